"""The trial scheduler with runners that need no services: slots, failures, pruning, retries, restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest
from optuna.trial import TrialState

from ehrlab.core.errors import UnavailableError
from ehrlab.hpo.runners import InProcessRunner
from ehrlab.hpo.scheduler import RunResult, TrialScheduler, metric_value, request_id
from ehrlab.hpo.studies import StudyDefinition, StudyManager, TrialInfo, parse_definition

SPACE = {"x": {"low": -1.0, "high": 1.0}, "y": {"low": -1.0, "high": 1.0}, "category": ["a", "b", "c"]}


def definition(name: str, **overrides: object) -> StudyDefinition:
    return parse_definition({"name": name, "metric": "loss", "direction": "minimize", "space": SPACE,
                             "n_trials": 9, "parallelism": 3, "objective": {"kind": "hpo_synthetic"},
                             "sampler": {"seed": 0}, **overrides})


class FakeCluster:
    """Runs that end when the test says (or after `duration(trial, retry)` seconds); submit is idempotent."""

    def __init__(self, duration: Callable[[TrialInfo, int], float | None],
                 outcome: Callable[[TrialInfo, int], RunResult] | None = None) -> None:
        self.duration, self.outcome = duration, outcome or (lambda t, r: RunResult("succeeded", [{"loss": t.number}]))
        self.runs: dict[str, tuple[TrialInfo, int]] = {}
        self.started: list[tuple[float, str]] = []
        self.ended: list[tuple[float, str]] = []
        self.cancelled: list[str] = []
        self.lock = threading.Lock()

    def runner(self) -> FakeRunner:
        return FakeRunner(self)


class FakeRunner:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.closed = threading.Event()

    def submit(self, definition: StudyDefinition, trial: TrialInfo, retry: int) -> str:
        run_id = request_id(definition.name, trial.number, retry)
        with self.cluster.lock:
            if run_id not in self.cluster.runs:
                self.cluster.runs[run_id] = (trial, retry)
                self.cluster.started.append((time.monotonic(), run_id))
        return run_id

    def watch(self, run_id: str, done: Callable[[str, RunResult], None]) -> None:
        trial, retry = self.cluster.runs[run_id]
        seconds = self.cluster.duration(trial, retry)
        if seconds is None:
            return  # never ends (a silent run)

        def finish() -> None:
            if self.closed.is_set() or run_id in self.cluster.cancelled:
                return
            with self.cluster.lock:
                self.cluster.ended.append((time.monotonic(), run_id))
            done(run_id, self.cluster.outcome(trial, retry))

        threading.Timer(seconds, finish).start()

    def cancel(self, run_id: str, reason: str) -> None:
        self.cluster.cancelled.append(run_id)

    def close(self) -> None:
        self.closed.set()


def run_study(manager: StudyManager, runner: object, study: StudyDefinition, timeout: float = 30) -> TrialScheduler:
    scheduler = TrialScheduler(manager, runner, poll_s=0.05)  # type: ignore[arg-type]
    manager.create(study)
    scheduler.start(study.name)
    assert scheduler.wait(study.name, timeout), "the study did not finish"
    return scheduler


def test_a_free_slot_is_refilled_at_once(manager: StudyManager, study_name: str) -> None:
    # trial 0 is slow: the others must keep starting around it instead of waiting for a whole batch
    cluster = FakeCluster(lambda trial, retry: 1.5 if trial.number == 0 else 0.1)
    scheduler = run_study(manager, cluster.runner(), definition(study_name))
    summary = manager.summary(study_name, trials=True)
    assert summary.counts["complete"] == 9 and len(cluster.runs) == 9
    slow_end = next(t for t, run in cluster.ended if run.endswith("/0/0"))
    assert sum(1 for t, _ in cluster.started if t < slow_end) == 9  # all others started while trial 0 ran
    events = sorted([(t, 1) for t, _ in cluster.started] + [(t, -1) for t, _ in cluster.ended])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    assert peak == 3
    assert scheduler.status(study_name) == (True, "")
    scheduler.close()


def test_crashing_configurations_fail_and_pruned_trials_stop(manager: StudyManager, study_name: str,
                                                             tmp_path: Path) -> None:
    study = definition(study_name, n_trials=10, parallelism=2, pruner={"name": "median", "n_startup_trials": 2},
                       objective={"kind": "hpo_synthetic", "params": {"epochs": 3, "crash_if_x_above": 0.3}})
    scheduler = run_study(manager, InProcessRunner(manager, store_dir=tmp_path, workers=2), study, timeout=60)
    trials = manager.summary(study_name, trials=True).trials
    assert len(trials) == 10 and all(t.state.is_finished() for t in trials)
    crashed = [t for t in trials if t.params["x"] > 0.3]
    assert crashed and all(t.state == TrialState.FAIL and "training diverged" in t.error for t in crashed)
    for trial in trials:
        if trial.state == TrialState.PRUNED:
            assert len(trial.intermediate) < 3 and "pruned_at_step" in trial.user_attrs
        if trial.state == TrialState.COMPLETE:
            assert len(trial.intermediate) == 3
    scheduler.close()


def test_lost_runs_run_again_with_the_same_point_within_bounds(manager: StudyManager, study_name: str) -> None:
    def outcome(trial: TrialInfo, retry: int) -> RunResult:
        if trial.number == 1 and retry == 0:
            return RunResult("lost", error="node deleted")
        if trial.number == 2:
            return RunResult("cancelled", error="cancelled by an operator")
        return RunResult("succeeded", [{"loss": 0.5, "other": 1}])

    cluster = FakeCluster(lambda trial, retry: 0.05, outcome)
    scheduler = run_study(manager, cluster.runner(), definition(study_name, n_trials=4, max_retries=2))
    trials = manager.summary(study_name, trials=True).trials
    assert len(trials) == 4
    assert trials[1].state == TrialState.COMPLETE and trials[1].user_attrs["retry"] == 1
    assert cluster.runs[request_id(study_name, 1, 1)][0].params == trials[1].params
    assert trials[2].state == TrialState.FAIL and "gave up after 3 runs" in trials[2].error
    assert {run for run in cluster.runs if "/2/" in run} == {f"hpo/{study_name}/2/{r}" for r in range(3)}
    scheduler.close()


def test_a_task_that_never_reports_the_metric_fails_its_trial(manager: StudyManager, study_name: str) -> None:
    cluster = FakeCluster(lambda trial, retry: 0.05, lambda trial, retry: RunResult("succeeded", [{"acc": 1.0}]))
    scheduler = run_study(manager, cluster.runner(), definition(study_name, n_trials=2))
    trials = manager.summary(study_name, trials=True).trials
    assert all(t.state == TrialState.FAIL and "without reporting 'loss'" in t.error for t in trials)
    scheduler.close()


def test_a_silent_trial_is_cancelled_and_run_again(manager: StudyManager, study_name: str) -> None:
    cluster = FakeCluster(lambda trial, retry: None if (trial.number, retry) == (0, 0) else 0.05)
    scheduler = run_study(manager, cluster.runner(), definition(study_name, n_trials=3, heartbeat_timeout_s=0.4))
    trials = manager.summary(study_name, trials=True).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert cluster.cancelled == [request_id(study_name, 0, 0)] and trials[0].user_attrs["retry"] == 1
    scheduler.close()


def test_a_restarted_scheduler_adopts_running_trials(hpo_database: str, study_name: str) -> None:
    release = threading.Event()
    cluster = FakeCluster(lambda trial, retry: 0.05 if release.is_set() else 0.3)
    first_manager = StudyManager(hpo_database)
    first = TrialScheduler(first_manager, cluster.runner(), poll_s=0.05)
    first_manager.create(definition(study_name, n_trials=6, parallelism=3))
    first.start(study_name)
    deadline = time.monotonic() + 10
    while len(cluster.runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    first.close()  # the process dies with three trials running
    first_manager.close()
    release.set()

    second_manager = StudyManager(hpo_database)
    second = TrialScheduler(second_manager, cluster.runner(), poll_s=0.05)
    try:
        assert second.resume_all() == [study_name]
        assert second.wait(study_name, 30)
        trials = second_manager.summary(study_name, trials=True).trials
        assert [t.number for t in trials] == list(range(6)) and all(t.state == TrialState.COMPLETE for t in trials)
        assert sorted(cluster.runs) == sorted(request_id(study_name, n, 0) for n in range(6))  # no trial ran twice
    finally:
        second.close()
        second_manager.close()


def test_a_submit_that_fails_while_the_controller_restarts_is_retried(manager: StudyManager,
                                                                      study_name: str) -> None:
    cluster = FakeCluster(lambda trial, retry: 0.05)
    runner = cluster.runner()
    submit, failures = runner.submit, []

    def flaky(definition: StudyDefinition, trial: TrialInfo, retry: int) -> str:
        if trial.number == 2 and not failures:
            failures.append(trial.number)
            raise UnavailableError("submit: service unavailable (connection refused)")
        return submit(definition, trial, retry)

    runner.submit = flaky  # type: ignore[method-assign]
    with mock.patch("ehrlab.hpo.scheduler._RESUME_S", 0.05):
        scheduler = run_study(manager, runner, definition(study_name, n_trials=5, parallelism=2))
    trials = manager.summary(study_name, trials=True).trials
    assert failures == [2] and [t.state for t in trials] == [TrialState.COMPLETE] * 5
    assert sorted(cluster.runs) == sorted(request_id(study_name, n, 0) for n in range(5))
    scheduler.close()


@pytest.mark.parametrize("timeout_s", [0.3])
def test_the_timeout_stops_new_trials(manager: StudyManager, study_name: str, timeout_s: float) -> None:
    cluster = FakeCluster(lambda trial, retry: 0.2)
    scheduler = TrialScheduler(manager, cluster.runner(), poll_s=0.05)
    manager.create(definition(study_name, n_trials=100, parallelism=2, timeout_s=timeout_s))
    scheduler.start(study_name, timeout_s=timeout_s)
    assert scheduler.wait(study_name, 10)
    assert 2 <= len(cluster.runs) <= 6 and manager.summary(study_name).counts["running"] == 0
    scheduler.close()


def test_the_metric_is_read_from_wide_or_long_result_rows() -> None:
    assert metric_value([{"loss": 1.0}, {"loss": 0.5, "acc": 0.9}], "loss") == 0.5
    assert metric_value([{"metric": "val_loss", "value": 0.3}, {"metric": "loss", "value": 2}], "val_loss") == 0.3
    assert metric_value([{"loss": "n/a"}, {"loss": True}], "loss") is None
