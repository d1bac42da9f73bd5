"""The study manager on a real PostgreSQL: create/ask/tell/report, restarts, retries, bad input."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from ehrlab.core.embedded.postgres import EmbeddedPostgres
from ehrlab.core.errors import ConflictError, FailedPreconditionError, NotFoundError, SpecError, UnavailableError
from ehrlab.hpo.algorithms import build_pruner, pruner_config
from ehrlab.hpo.space import params_key
from ehrlab.hpo.storage import optuna_url
from ehrlab.hpo.studies import StudyManager, parse_definition

SPACE = {"x": {"low": -1.0, "high": 1.0}, "c": ["a", "b", "c"],
         "y": {"low": -1.0, "high": 1.0, "when": {"c": ["a", "b"]}}}


def definition(name: str, **overrides: object) -> dict:
    return {"name": name, "metric": "loss", "direction": "minimize", "space": SPACE, "n_trials": 40, **overrides}


def loss(params: dict) -> float:
    return (params["x"] - 0.3) ** 2 + params.get("y", 0.5) ** 2


def test_ask_tell_and_top_k(manager: StudyManager, study_name: str) -> None:
    summary = manager.create(parse_definition(definition(study_name)))
    assert summary.counts["complete"] == 0
    for _ in range(6):
        for trial in manager.ask(study_name, 4):
            manager.tell(study_name, trial.number, TrialState.COMPLETE, loss(trial.params))
    summary = manager.summary(study_name, trials=True)
    assert summary.counts["complete"] == 24 and [t.number for t in summary.trials] == list(range(24))
    top = manager.top_k(study_name, 3)
    values = [t.value for t in top]
    assert values == sorted(values) and values[0] == min(t.value for t in summary.trials)
    assert summary.best is not None and summary.best.number == top[0].number


def test_budget_limits_asks(manager: StudyManager, study_name: str) -> None:
    manager.create(parse_definition(definition(study_name, n_trials=5)))
    assert len(manager.ask(study_name, 3)) == 3
    assert len(manager.ask(study_name, 3)) == 2
    assert manager.ask(study_name, 3) == []


def test_parallel_askers_never_get_the_same_point(manager: StudyManager, study_name: str) -> None:
    manager.create(parse_definition(definition(study_name, n_trials=200, sampler={"n_startup_trials": 5})))
    seen: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            (trial,) = manager.ask(study_name, 1)
            with lock:
                seen.append(params_key(trial.params))
            manager.tell(study_name, trial.number, TrialState.COMPLETE, loss(trial.params))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 200 and len(set(seen)) == 200
    assert manager.summary(study_name).counts["complete"] == 200


def test_a_finite_space_runs_out_instead_of_repeating(manager: StudyManager, study_name: str) -> None:
    manager.create(parse_definition({"name": study_name, "metric": "loss", "space": {"a": [1, 2, 3], "b": ["u", "v"]},
                                     "sampler": {"n_startup_trials": 2}}))
    points = []
    while batch := manager.ask(study_name, 4):
        for trial in batch:
            points.append(params_key(trial.params))
            manager.tell(study_name, trial.number, TrialState.COMPLETE, float(trial.params["a"]))
    assert sorted(points) == sorted({*points}) and len(points) == 6


def test_state_survives_a_restart_and_plain_optuna_reads_it(hpo_database: str, study_name: str) -> None:
    first = StudyManager(hpo_database)
    first.create(parse_definition(definition(study_name, pruner={"name": "median", "n_startup_trials": 1})))
    done = first.ask(study_name, 3)
    for trial in done:
        first.report(study_name, trial.number, 1, loss(trial.params) + 1)
        first.tell(study_name, trial.number, TrialState.COMPLETE, loss(trial.params))
    running = first.ask(study_name, 2)
    first.close()

    second = StudyManager(hpo_database)
    try:
        summary = second.summary(study_name, trials=True)
        assert summary.counts["complete"] == 3 and summary.counts["running"] == 2
        assert [t.params for t in summary.trials[3:]] == [t.params for t in running]
        assert summary.trials[0].intermediate == {1: pytest.approx(loss(done[0].params) + 1)}
        second.tell(study_name, running[0].number, TrialState.COMPLETE, 0.5)
        (nxt,) = second.ask(study_name, 1)
        assert nxt.number == 5
    finally:
        second.close()
    study = optuna.load_study(study_name=study_name, storage=optuna_url(hpo_database))
    assert [t.number for t in study.trials] == list(range(6))
    assert study.trials[3].value == 0.5 and study.trials[0].params == done[0].params
    assert study.trials[0].intermediate_values == {1: pytest.approx(loss(done[0].params) + 1)}


def test_a_second_process_cannot_serve_the_same_study(hpo_database: str, manager: StudyManager,
                                                      study_name: str) -> None:
    manager.create(parse_definition(definition(study_name)))
    other = StudyManager(hpo_database)
    try:
        with pytest.raises(FailedPreconditionError, match="another hpo-controller"):
            other.ask(study_name, 1)
    finally:
        other.close()


def test_same_definition_resumes_a_different_one_conflicts(manager: StudyManager, study_name: str) -> None:
    manager.create(parse_definition(definition(study_name)))
    resumed = manager.create(parse_definition(definition(study_name, n_trials=80, parallelism=4)))
    assert resumed.definition.n_trials == 80
    for change, word in (({"direction": "maximize"}, "direction"), ({"metric": "acc"}, "metric"),
                         ({"space": {**SPACE, "z": [1, 2]}}, "space")):
        with pytest.raises(ConflictError, match=word):
            manager.create(parse_definition(definition(study_name, **change)))
    assert manager.summary(study_name).definition.direction == "minimize"


def test_tell_rules(manager: StudyManager, study_name: str) -> None:
    manager.create(parse_definition(definition(study_name)))
    trial, other = manager.ask(study_name, 2)
    with pytest.raises(SpecError, match="finite value"):
        manager.tell(study_name, trial.number, TrialState.COMPLETE, float("nan"))
    manager.tell(study_name, trial.number, TrialState.COMPLETE, 1.0)
    assert manager.tell(study_name, trial.number, TrialState.COMPLETE, 1.0).value == 1.0  # a retried RPC
    with pytest.raises(FailedPreconditionError, match="already finished"):
        manager.tell(study_name, trial.number, TrialState.FAIL)
    with pytest.raises(NotFoundError):
        manager.tell(study_name, 999, TrialState.COMPLETE, 1.0)
    with pytest.raises(NotFoundError):
        manager.ask("no-such-study", 1)
    failed = manager.tell(study_name, other.number, TrialState.FAIL, error="CUDA out of memory")
    assert failed.state == TrialState.FAIL and failed.error == "CUDA out of memory"


def test_failed_trials_retry_with_the_same_point_within_bounds(manager: StudyManager, study_name: str) -> None:
    manager.create(parse_definition(definition(study_name, max_retries=2, n_trials=1)))
    (trial,) = manager.ask(study_name, 1)
    attempts = [trial]
    while True:
        manager.tell(study_name, attempts[-1].number, TrialState.FAIL, error="preempted", retry=True)
        again = manager.ask(study_name, 1)
        if not again:
            break
        attempts.append(again[0])
    assert [t.attempt for t in attempts] == [1, 2, 3]
    assert all(t.params == trial.params for t in attempts)
    assert manager.summary(study_name).counted == 1  # retries do not use the budget


def test_silent_trials_are_failed_and_retried(manager: StudyManager, study_name: str) -> None:
    manager.create(parse_definition(definition(study_name, heartbeat_timeout_s=0.3, max_retries=1)))
    alive, silent = manager.ask(study_name, 2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and manager.summary(study_name).counts["fail"] == 0:
        manager.heartbeat(study_name, alive.number)
        time.sleep(0.05)
    trials = manager.summary(study_name, trials=True).trials
    assert trials[silent.number].state == TrialState.FAIL and "no heartbeat" in trials[silent.number].error
    assert trials[alive.number].state == TrialState.RUNNING
    (retry,) = manager.ask(study_name, 1)
    assert retry.params == silent.params and retry.attempt == 2


def test_median_pruner_stops_a_bad_trial(manager: StudyManager, study_name: str) -> None:
    manager.create(parse_definition(definition(study_name, pruner={"name": "median", "n_startup_trials": 2})))
    for value in (1.0, 2.0):
        (trial,) = manager.ask(study_name, 1)
        for step in range(3):
            assert not manager.report(study_name, trial.number, step, value)
        manager.tell(study_name, trial.number, TrialState.COMPLETE, value)
    (bad,) = manager.ask(study_name, 1)
    assert manager.report(study_name, bad.number, 0, 10.0)
    assert manager.was_pruned(study_name, bad.number)
    pruned = manager.tell(study_name, bad.number, TrialState.PRUNED)
    assert pruned.state == TrialState.PRUNED and pruned.value == 10.0
    with pytest.raises(FailedPreconditionError):
        manager.report(study_name, bad.number, 1, 1.0)


@pytest.mark.parametrize(("change", "path", "words"), [
    ({"space": {}}, "space", "empty"),
    ({"sampler": {"name": "cmaes-ish"}}, "sampler.name", "unknown sampler"),
    ({"pruner": {"name": "hyperbandit"}}, "pruner.name", "unknown pruner"),
    ({"pruner": {"name": "median", "n_startup": 3}}, "pruner.n_startup", "unknown key"),
    ({"direction": "up"}, "direction", ""),
    ({"name": "bad name"}, "name", ""),
    ({"objective": {"kind": "hpo_synthetc"}}, "objective.kind", "did you mean 'hpo_synthetic'"),
    ({"objective": {"kind": "hpo_synthetic"}, "metric": "accuracy"}, "metric", "never reports 'accuracy'"),
    ({"objective": {"kind": "hpo_synthetic"}, "metric": "loss", "space": {"epochs": {"low": 0, "high": 3}}},
     "space.epochs", "greater than or equal to 1"),
    ({"objective": {"kind": "hpo_synthetic", "params": {"epochz": 3}}, "metric": "loss"}, "objective.params.epochz",
     "unknown key"),
    ({"objective": {"kind": "hpo_synthetic"}, "metric": "loss", "n_trials": 0}, "", "n_trials or timeout_s"),
    ({"enqueue": [{"x": 0.1}]}, "enqueue[0]", "missing 'c'"),
])
def test_bad_definitions_name_the_key(change: dict, path: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_definition({**definition("bad"), **change}, source="study.yaml")
    assert caught.value.path == path
    assert words in caught.value.message


def test_wilcoxon_prunes_a_trial_worse_on_every_fold(manager: StudyManager, study_name: str) -> None:
    manager.create(parse_definition(definition(study_name, pruner={"name": "wilcoxon", "p_threshold": 0.1,
                                                                   "n_startup_steps": 2})))
    (best,) = manager.ask(study_name, 1)
    folds = [0.30, 0.42, 0.25, 0.38, 0.33, 0.29, 0.41, 0.36]
    for fold, value in enumerate(folds):
        manager.report(study_name, best.number, fold, value)
    manager.tell(study_name, best.number, TrialState.COMPLETE, sum(folds) / len(folds))
    (worse,) = manager.ask(study_name, 1)
    verdicts = [manager.report(study_name, worse.number, fold, value + 0.5) for fold, value in enumerate(folds)]
    assert not verdicts[0] and True in verdicts  # too few folds at first, then clearly worse: pruned
    (similar,) = manager.ask(study_name, 1)
    assert not any(manager.report(study_name, similar.number, fold, value + (0.01 if fold % 2 else -0.01))
                   for fold, value in enumerate(folds))


def test_hyperband_is_wrapped_by_patience() -> None:
    pruner = build_pruner(pruner_config({"name": "hyperband", "min_resource": 1, "max_resource": 9, "patience": 2}))
    assert isinstance(pruner, optuna.pruners.PatientPruner)
    assert isinstance(pruner._wrapped_pruner, optuna.pruners.HyperbandPruner) and pruner._patience == 2


def test_successive_halving_and_hyperband_prune(manager: StudyManager, study_name: str) -> None:
    for suffix, pruner in (("sh", {"name": "successive_halving", "min_resource": 1, "reduction_factor": 2}),
                           ("hb", {"name": "hyperband", "min_resource": 1, "max_resource": 8})):
        name = f"{study_name}-{suffix}"
        manager.create(parse_definition(definition(name, pruner=pruner, n_trials=12)))
        pruned = 0
        for trial in manager.ask(name, 12):
            quality = loss(trial.params)
            for step in range(1, 9):
                if manager.report(name, trial.number, step, quality + 1 / step):
                    manager.tell(name, trial.number, TrialState.PRUNED)
                    pruned += 1
                    break
            else:
                manager.tell(name, trial.number, TrialState.COMPLETE, quality)
        assert 0 < pruned < 12, suffix


@pytest.mark.slow
def test_a_database_outage_fails_requests_then_the_study_carries_on(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", durable=False)
    url = server.start()
    manager = StudyManager(url, retry_deadline_s=1.0)
    try:
        manager.create(parse_definition(definition("outage")))
        for trial in manager.ask("outage", 2):
            manager.tell("outage", trial.number, TrialState.COMPLETE, loss(trial.params))
        server.stop()
        with pytest.raises(UnavailableError):
            manager.ask("outage", 1)
        server.start()
        (trial,) = manager.ask("outage", 1)  # the cache was dropped and reloaded: nothing half-written
        assert trial.number == 2
        assert manager.summary("outage").counts["complete"] == 2
    finally:
        manager.close()
        server.destroy()
