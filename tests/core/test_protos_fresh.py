"""The committed gRPC code must be exactly what `make protos` generates from protos/."""

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    subprocess.run(["bash", str(ROOT / "scripts/gen-protos.sh"), str(tmp_path)], check=True, cwd=ROOT,
                   env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}, capture_output=True)
    generated = tmp_path / "ehrlab" / "v1"
    committed = ROOT / "libs/core/ehrlab/v1"
    names = sorted(p.name for p in generated.iterdir() if p.is_file())
    assert names == sorted(p.name for p in committed.iterdir() if p.is_file() and p.suffix in (".py", ".pyi"))
    _, mismatch, errors = filecmp.cmpfiles(generated, committed, names, shallow=False)
    assert not mismatch and not errors, f"stale generated code (run `make protos`): {mismatch + errors}"
