"""A causal batch through the embedded stack: the CLI submits, the controller plans and caches, the
LocalLauncher runs every kind, the result-store gathers estimates and the aggregate's summary."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ehrlab.causal.planner import reshuffle_seed
from ehrlab.core.embedded.stack import Stack
from tests.causal.conftest import EXPERIMENT

pytestmark = pytest.mark.slow


def test_two_outer_runs_by_two_reshuffles_end_to_end(stack: Stack, tmp_path: Path) -> None:
    name = f"causal-{uuid.uuid4().hex[:8]}"
    models = tmp_path / "models.yaml"
    models.write_text("catboost: {iterations: 20, max_codes: 100}\nestimation: {n_bootstrap: 20}\n"
                      f"dataset: {{id: {name}}}\n")
    command = [sys.executable, "-m", "ehrlab.cli.main", "causal", "run", EXPERIMENT, "-n", "2", "-k", "2",
               "--baseline-only", "--sample-fraction", "0.8", "--patients", "1200", "--base-seed", "5",
               "--name", name, "--spec", str(models), "--wait"]
    done = subprocess.run(command, env=stack.env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| outcome | arm | method | true effect |" in done.stdout and "EXPERIMENT_STATE_SUCCEEDED" in done.stdout

    client = stack.client()
    (experiment,) = client.list_experiments(name_prefix=name)
    rows = client.results(experiment.id, kind="estimate_effects")
    assert len(rows) == 2 * 2 * 2 * 8                               # runs x reshuffles x outcomes x methods
    seeds = {(int(r["outer_run"]), int(r["inner_run"])): int(r["fold_seed"]) for r in rows}
    assert seeds == {(r, k): reshuffle_seed(5, r, k) for r in (1, 2) for k in (1, 2)}
    assert all(r["true_effect"] == 0.0 for r in rows if r["outcome"] == "null" and r["method"] != "unadjusted_rr")
    summary = client.results(experiment.id, kind="aggregate_estimates")
    assert {(r["outcome"], r["method"]) for r in summary} == {(o, m) for o in ("null", "effect") for m in
                                                               {r["method"] for r in rows}}
    assert all(r["estimates"] == 4 and r["outer_runs"] == 2 for r in summary)
    tasks = client.tasks(experiment.id)
    assert sum(t.kind == "simulate_outcomes" for t in tasks) == 2   # stage 1 once per outer run
    assert sum(t.kind == "prepare_folds" for t in tasks) == 4       # stage 2 per reshuffle

    rerun = subprocess.run(command, env=stack.env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    second = next(e for e in client.list_experiments(name_prefix=name) if e.id != experiment.id)
    assert second.counts.cached == second.counts.total == len(tasks)   # the same seeds: nothing runs again
