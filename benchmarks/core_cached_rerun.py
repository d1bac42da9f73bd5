"""Fully cached re-run of a 1,000-step pipeline: ehrlab against a seed-003-style runner, side by side.

    .venv/bin/python -m benchmarks.core_cached_rerun [--layers 10] [--width 100] [--repeats 5]

The pipeline is `--layers` layers of `--width` `noop` steps; each step reads two steps of the layer
before it. Its spec comes in three YAML files merged base -> dataset -> experiment. It runs once in
a private embedded stack, then again `--repeats` times with everything cached, measured:
- ehrlab, Python client: `Client.submit(files)` then `Client.wait` (WatchExperiment) until it ends;
- ehrlab CLI: `ehrlab submit base.yaml dataset.yaml experiment.yaml --wait` (a new process each time);
- the reference (`benchmarks.seed003_reference`), as seed 003's runner works: merge the same YAML
  files, walk the steps in dependency order, hash each step's config with its dataset config and
  upstream hashes, and skip the step when `artifacts/{dataset}/{step}/{hash}/meta.json` exists
  (in-process, and as a new process).
ehrlab does more per step on a re-run (content keys with code versions, a manifest read and checked
per task, every task recorded in PostgreSQL and reported to the result-store), so the ratio is the
price of that. Target: the ehrlab re-run < 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks import seed003_reference
from benchmarks.harness import CpuMeter, Stopwatch, embedded_stack, load, machine, stack_groups, table
from ehrlab.core.embedded.stack import Stack
from ehrlab.v1 import common_pb2


def write_spec(root: Path, layers: int, width: int, salt: str) -> list[Path]:
    """base.yaml (the steps), dataset.yaml, experiment.yaml: the three layers seed 003 merges."""
    steps: dict[str, Any] = {}
    for layer in range(layers):
        for i in range(width):
            step: dict[str, Any] = {"kind": "noop", "params": {"payload": {"layer": layer, "index": i, "salt": salt}}}
            if layer:
                step["inputs"] = {"a": f"l{layer - 1}_{i}", "b": f"l{layer - 1}_{(i + 1) % width}"}
            steps[f"l{layer}_{i}"] = step
    files = {"base.yaml": {"seed": 42, "steps": steps},
             "dataset.yaml": {"dataset": {"id": "bench", "data_root": str(root / "data")}},
             "experiment.yaml": {"name": f"cached-rerun-{salt}", "labels": {"purpose": "benchmark"}}}
    paths = []
    for name, content in files.items():
        (root / name).write_text(yaml.safe_dump(content, sort_keys=False))
        paths.append(root / name)
    return paths


# --- measuring -----------------------------------------------------------------------------------

@dataclass
class Measured:
    runner: str
    seconds: list[float]
    cpu_seconds: float                 # per run: this process, the processes it ran, and the stack's
    load: str


def timed(runner: str, repeats: int, action: Callable[[], None], stack: Stack | None = None) -> Measured:
    """Wall seconds of `repeats` runs of `action`, its CPU seconds per run, the load before -> after."""
    before = load()
    meter = CpuMeter(stack_groups(stack) if stack else [])
    meter.start()
    mine = os.times()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - start)
    after = os.times()
    used = meter.stop()
    own = sum(getattr(after, f) - getattr(mine, f) for f in ("user", "system", "children_user", "children_system"))
    services = sum(v for k, v in used.items() if k != "benchmark")  # 'benchmark' is counted in `own`
    return Measured(runner, seconds, (own + services) / repeats, f"{before:.1f}->{load():.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    print(f"machine: {machine()}")
    work = Path(tempfile.mkdtemp(prefix="ehrlab-bench-rerun-"))
    try:
        measure(work, args.layers, args.width, args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(work: Path, layers: int, width: int, repeats: int) -> None:
    """Runs every runner on a `layers` x `width` pipeline written under `work` and prints the tables."""
    steps = layers * width
    files = write_spec(work, layers, width, uuid.uuid4().hex[:8])

    reference_artifacts = work / "reference-artifacts"
    assert seed003_reference.run(files, reference_artifacts) == (steps, 0)
    rows = [timed("seed-003 reference, in-process", repeats,
                  lambda: _check(seed003_reference.run(files, reference_artifacts), (0, steps)))]
    command = [sys.executable, "-m", "benchmarks.seed003_reference", str(work), str(reference_artifacts)]
    rows.append(timed("seed-003 reference, new process", repeats, lambda: _check(
        tuple(json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout).values()),
        (0, steps))))

    with embedded_stack() as stack, stack.client() as client:
        clock = Stopwatch()
        with clock.measure():
            first = client.wait(client.submit(files).id, timeout=1800)
        assert first.state == common_pb2.EXPERIMENT_STATE_SUCCEEDED, first.error
        print(f"first run: {first.counts.succeeded} steps ran in {clock.seconds:.1f}s (load {clock.load})")

        def rerun() -> None:
            final = client.wait(client.submit(files).id, timeout=600)
            _check((final.state, final.counts.cached), (common_pb2.EXPERIMENT_STATE_SUCCEEDED, steps))

        rows.append(timed("ehrlab, Python client (submit + wait)", repeats, rerun, stack))
        env = {**os.environ, **stack.env()}
        cli = [sys.executable, "-m", "ehrlab.cli.main", "submit", *map(str, files), "--wait"]
        rows.append(timed("ehrlab CLI: ehrlab submit ... --wait", repeats,
                          lambda: subprocess.run(cli, check=True, env=env, capture_output=True), stack))

    median = {row.runner: statistics.median(row.seconds) for row in rows}
    print(table([{"runner": row.runner, "steps": steps, "median s": median[row.runner], "min s": min(row.seconds),
                  "max s": max(row.seconds), "cpu s/run (all processes)": row.cpu_seconds, "load 1m": row.load}
                 for row in rows],
                title=f"\nFully cached re-run of a {steps}-step pipeline, {repeats} runs each (target < 2 s)"))
    reference, reference_process, client_run, cli_run = rows
    print(table([
        {"comparison": "ehrlab client / reference in-process",
         "wall ratio": median[client_run.runner] / median[reference.runner],
         "cpu ratio": client_run.cpu_seconds / reference.cpu_seconds},
        {"comparison": "ehrlab CLI / reference new process",
         "wall ratio": median[cli_run.runner] / median[reference_process.runner],
         "cpu ratio": cli_run.cpu_seconds / reference_process.cpu_seconds},
    ], title="\nRatios (of median wall times; of CPU seconds per run)"))


def _check(got: object, expected: object) -> None:
    if got != expected:
        raise RuntimeError(f"expected {expected}, got {got}")


if __name__ == "__main__":
    main()
