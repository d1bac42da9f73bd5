"""Seed 003's step runner, reduced to its cache check: the reference of `benchmarks.core_cached_rerun`.

    python -m benchmarks.seed003_reference SPEC_DIR ARTIFACTS

Merges base.yaml -> dataset.yaml -> experiment.yaml, walks the steps in dependency order, hashes each
step (its config, the dataset config, the upstream hashes: by value, as seed 003 does) and skips it when
`ARTIFACTS/{dataset}/{step}/{hash}/meta.json` exists; "running" a step writes only its meta.json.
Imports nothing but the standard library and PyYAML, so as a new process it starts as fast as the
seed's own script would. Prints {"ran": N, "skipped": M}.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

SPEC_FILES = ("base.yaml", "dataset.yaml", "experiment.yaml")


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def run(files: list[Path], artifacts: Path) -> tuple[int, int]:
    """Returns (steps run, steps skipped)."""
    config: dict[str, Any] = {}
    for path in files:
        config = merge(config, yaml.safe_load(path.read_text()))
    dataset, steps = config["dataset"], config["steps"]
    hashes: dict[str, str] = {}
    ran = skipped = 0
    pending = list(steps)
    while pending:  # dependency order: a step goes once all its upstream steps have hashes
        waiting = []
        for name in pending:
            upstream = sorted(steps[name].get("inputs", {}).values())
            if any(u not in hashes for u in upstream):
                waiting.append(name)
                continue
            text = json.dumps({"step": name, "dataset": dataset, "config": steps[name],
                               "upstream": [hashes[u] for u in upstream]}, sort_keys=True)
            hashes[name] = hashlib.sha256(text.encode()).hexdigest()[:16]
            out = artifacts / dataset["id"] / name / hashes[name]
            if (out / "meta.json").exists():
                skipped += 1
                continue
            out.mkdir(parents=True, exist_ok=True)
            (out / "meta.json").write_text(json.dumps({"step": name, "hash": hashes[name]}))
            ran += 1
        pending = waiting
    return ran, skipped


if __name__ == "__main__":
    spec_dir, artifacts = Path(sys.argv[1]), Path(sys.argv[2])
    ran, skipped = run([spec_dir / name for name in SPEC_FILES], artifacts)
    print(json.dumps({"ran": ran, "skipped": skipped}))
