"""`ehrlab causal run`: the flags build the same spec as the YAML form; bad flags fail before submitting."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ehrlab.causal.planner import CausalBatchSpec
from ehrlab.cli.main import cli
from ehrlab.core.config import load_layer, validate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "causal"


def dry_run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["causal", "run", *args, "--dry-run"])
    return result.exit_code, result.output


def test_flags_build_the_demo_spec(tmp_path: Path) -> None:
    demo = yaml.safe_load((EXAMPLES / "demo.yaml").read_text())
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump({"catboost": demo["catboost"], "estimation": demo["estimation"]}))
    code, output = dry_run("ce0p62_cy0p62_y0p2_i0p2", "-n", "3", "-k", "2", "--baseline-only",
                           "--sample-fraction", "0.8", "--patients", "3000", "--name", "causal-demo",
                           "--spec", str(models))
    assert code == 0, output
    assert validate(CausalBatchSpec, yaml.safe_load(output)) == validate(CausalBatchSpec, demo)


def test_runner_flags_map_to_spec_keys(tmp_path: Path) -> None:
    code, output = dry_run("ce0p62_cy0p62_y0p2_i0p2", "ce0p2_cy0p2_y0p2_i0p2", "--n-runs", "20", "--inner-runs", "5",
                           "--bert-only", "--sample-size", "500", "--base-seed", "7", "--overwrite", "--failfast",
                           "--timeout-factor", "3", "--meds", str(tmp_path))
    assert code == 0, output
    spec = yaml.safe_load(output)
    assert spec["arms"] == ["bert"] and spec["sample_size"] == 500 and spec["base_seed"] == 7
    assert spec["data"] == {"meds": str(tmp_path)} and spec["n_runs"] == 20 and spec["inner_runs"] == 5
    validated = validate(CausalBatchSpec, spec)
    assert validated.options.failfast and validated.options.timeout_factor == 3 and validated.options.force


@pytest.mark.parametrize(("args", "message"), [
    (["--sample-fraction", "0.5", "--baseline-only", "--bert-only"], "--baseline-only and --bert-only exclude"),
    (["--sample-fraction", "0.5", "--sample-size", "10"], "exactly one of --sample-fraction or --sample-size"),
    ([], "exactly one of --sample-fraction or --sample-size"),
    (["--sample-fraction", "0.5", "--meds", "/x", "--patients", "5"], "--meds and --patients exclude"),
])
def test_conflicting_flags_are_one_line_errors(args: list[str], message: str) -> None:
    code, output = dry_run("ce0p62_cy0p62_y0p2_i0p2", *args)
    assert code == 2 and message in output


def test_a_malformed_name_names_the_argument() -> None:
    code, output = dry_run("ce0p62_cy0p62_y0p2_i0p2", "ce62_y", "--sample-fraction", "0.5")
    assert code == 2
    assert "experiments[1]: malformed experiment name 'ce62_y'" in output


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_is_a_valid_spec(example: str) -> None:
    validate(CausalBatchSpec, load_layer(EXAMPLES / example).content)
