"""`ehrlab_hpo_trials{study, state}`: what the hpo-controller exports about its studies' trials."""

from __future__ import annotations

from optuna.trial import TrialState
from prometheus_client import CollectorRegistry, generate_latest

from ehrlab.hpo.metrics import TrialCounts
from ehrlab.hpo.studies import StudyManager, parse_definition

SPACE = {"x": {"low": -1.0, "high": 1.0}}


def trials(registry: CollectorRegistry, study: str, state: str) -> float | None:
    return registry.get_sample_value("ehrlab_hpo_trials", {"study": study, "state": state})


def test_trials_by_study_and_state_follow_ask_and_tell(manager: StudyManager, study_name: str) -> None:
    registry = CollectorRegistry()
    registry.register(TrialCounts(manager))  # before any study: describing needs no database
    assert b"ehrlab_hpo_trials{" not in generate_latest(registry)
    manager.create(parse_definition({"name": study_name, "metric": "loss", "direction": "minimize",
                                     "space": SPACE, "n_trials": 10}))
    asked = manager.ask(study_name, 4)
    manager.tell(study_name, asked[0].number, TrialState.COMPLETE, 0.5)
    manager.tell(study_name, asked[1].number, TrialState.FAIL, error="out of memory")
    manager.tell(study_name, asked[2].number, TrialState.PRUNED)
    counts = {state: trials(registry, study_name, state)
              for state in ("running", "complete", "failed", "pruned", "waiting")}
    assert counts == {"running": 1, "complete": 1, "failed": 1, "pruned": 1, "waiting": 0}
    assert trials(registry, study_name, "fail") is None  # the API's name for the state, not Optuna's

    other = f"{study_name}-b"
    manager.create(parse_definition({"name": other, "metric": "loss", "direction": "minimize", "space": SPACE}))
    manager.ask(other, 2)
    assert trials(registry, other, "running") == 2 and trials(registry, study_name, "running") == 1
