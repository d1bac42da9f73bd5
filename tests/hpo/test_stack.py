"""HPO on a running embedded stack: trials as controller tasks, the CLI, and fault drills.

Studies here use the hpo_synthetic task (a known loss surface, reported per epoch like a trainer).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ehrlab.cli.main import cli as main_cli
from ehrlab.core.embedded.stack import Stack
from ehrlab.hpo.client import HpoClient
from ehrlab.hpo.studies import parse_definition
from ehrlab.v1 import hpo_pb2

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hpo"
SPACE = {"x": {"low": -1.0, "high": 1.0}, "y": {"low": -1.0, "high": 1.0}, "category": ["a", "b", "c"]}


def cli(stack: Stack | None, *args: str) -> Result:
    """`ehrlab hpo ARGS` in this process (the same code as the console script, without its start-up time)."""
    result = CliRunner().invoke(main_cli, ["hpo", *args], env=stack.env() if stack else {}, catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def write_spec(path: Path, name: str, **sections: object) -> Path:
    spec = {"name": name, "metric": "loss", "direction": "minimize",
            "objective": {"kind": "hpo_synthetic", "params": {"epochs": 3, "crash_if_x_above": 0.8}},
            "sampler": {"name": "tpe", "seed": 1, "n_startup_trials": 3}, "pruner": {"name": "median"},
            "parallel": 3, **sections}
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.slow
def test_cli_runs_a_maximal_study_and_resumes_it(stack: Stack, tmp_path: Path) -> None:
    name = f"max-{uuid.uuid4().hex[:6]}"
    spec = write_spec(tmp_path / "spec.yaml", name, maximal={"n_trials": 6, "space": SPACE})
    first = cli(stack, "run", str(spec), "--parallel", "3", "-o", str(tmp_path / "out"))
    assert first.returncode == 0, first.stderr
    assert f"{name}-max: best loss" in first.stdout
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {f"{name}-max-topk.json", f"{name}-max-history.png",
                                                               f"{name}-max-intermediate.png"}
    again = cli(stack, "run", str(spec), "--n-trials", "9", "-o", str(tmp_path / "out"))  # resumes with a larger budget
    assert again.returncode == 0, again.stderr
    study = HpoClient(stack.client()).get(f"{name}-max", trials=True)
    assert study.counts.budgeted == 9 and len(study.trials) == 9 and study.finished
    experiments = [t.experiment_id for t in study.trials]
    assert len(set(experiments)) == 9 and all(experiments)
    for trial in study.trials:
        if trial.state == hpo_pb2.TRIAL_STATE_FAILED:
            assert "training diverged" in trial.error
    topk = json.loads(cli(stack, "export-topk", f"{name}-max", "-k", "3").stdout)
    assert [row["value"] for row in topk] == sorted(row["value"] for row in topk)
    assert set(topk[0]["params"]) == {"x", "y", "category"}
    listing = cli(stack, "ls").stdout
    assert f"{name}-max" in listing and "finished" in listing
    changed = write_spec(tmp_path / "changed.yaml", name,
                         maximal={"n_trials": 6, "space": {**SPACE, "x": {"low": -2.0, "high": 1.0}}})
    conflict = cli(stack, "run", str(changed))
    assert conflict.returncode == 2 and "already exists with a different space" in conflict.stderr


@pytest.mark.slow
def test_cli_runs_every_stage_and_refits(stack: Stack, tmp_path: Path) -> None:
    name = f"ms-{uuid.uuid4().hex[:6]}"
    stages = {"s0": {"n_trials": 2, "params": {"epochs": 1}}, "s1": {"n_trials": 5}, "s2": {"n_trials": 4, "top_k": 2},
              "s3": {"seeds": [1, 2], "metric": "loss"}}
    spec = write_spec(tmp_path / "spec.yaml", name, multistage={"space": SPACE, "stages": stages})
    result = cli(stack, "run", str(spec), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    hpo = HpoClient(stack.client())
    s1, s2 = hpo.definition(f"{name}-s1"), hpo.definition(f"{name}-s2")
    assert s2.space != s1.space and s2.enqueue == [hpo.top_k(f"{name}-s1", 1)[0].params]
    best_s1 = hpo.top_k(f"{name}-s1", 2)
    for axis in ("x", "y"):
        values = [t.params[axis] for t in best_s1]
        assert s2.space[axis]["low"] <= min(values) <= max(values) <= s2.space[axis]["high"]
    refit = json.loads((tmp_path / "out" / f"{name}-s3.json").read_text())
    assert refit["n"] == 2 and sorted(refit["values"]) == ["1", "2"] and refit["sd"] == 0.0  # a deterministic task
    assert "mean ± SD over 2 seeds" in result.stdout
    rerun = cli(stack, "run", str(spec), "--stage", "s3", "-o", str(tmp_path / "out"))  # resumes: nothing new runs
    assert rerun.returncode == 0, rerun.stderr


def test_a_metric_the_task_never_reports_is_refused_before_anything_runs(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", "bad-metric", maximal={"n_trials": 2, "space": SPACE})
    spec.write_text(spec.read_text().replace("metric: loss", "metric: val_macro_f1"))
    result = cli(None, "run", str(spec))
    assert result.returncode == 2
    assert "never reports 'val_macro_f1'" in result.stderr and "spec.yaml" in result.stderr


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def slow_study(name: str) -> object:
    return parse_definition({"name": name, "metric": "loss", "direction": "minimize", "space": SPACE, "n_trials": 8,
                             "parallelism": 2, "sampler": {"seed": 3},
                             "objective": {"kind": "hpo_synthetic", "max_attempts": 6,
                                           "params": {"epochs": 4, "epoch_s": 0.4}}})


def check_nothing_lost_or_doubled(hpo: HpoClient, name: str) -> None:
    study = hpo.get(name, trials=True)
    assert study.finished and len(study.trials) == 8 and study.counts.budgeted == 8
    assert all(t.state in (hpo_pb2.TRIAL_STATE_COMPLETE, hpo_pb2.TRIAL_STATE_PRUNED) for t in study.trials), [
        (t.number, t.state, t.error) for t in study.trials]
    assert len({t.experiment_id for t in study.trials}) == 8


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["hpo-controller", "controller"])
def test_a_service_killed_mid_study_resumes_it(stack_factory: Callable[..., Stack], victim: str) -> None:
    stack = stack_factory(("result-store", "controller", "hpo-controller"))
    hpo = HpoClient(stack.client())
    name = f"kill-{victim}"
    hpo.create(slow_study(name))
    wait_for(lambda: hpo.get(name).counts.complete >= 2)
    stack.kill(victim)                       # SIGKILL while trials run
    stack.restart(victim)
    hpo = HpoClient(stack.client())
    study = hpo.wait(name, timeout=120)
    assert study.finished
    check_nothing_lost_or_doubled(hpo, name)
