"""The note_grading planner: tasks from the GradingStore, the seed's workload arithmetic, skipped cases."""

from __future__ import annotations

from collections import Counter

import pytest

from ehrlab.core.config import validate
from ehrlab.core.errors import SpecError
from ehrlab.core.kinds import get_kind
from ehrlab.core.planning import PlanContext, get_planner
from ehrlab.grading.client import GradingClient
from ehrlab.grading.model import ExperimentDefinition, ModelSpec, Validation, Vendor
from ehrlab.grading.planner import NoteGradingSpec
from tests.grading.conftest import case, rubric


def spec(experiment: str = "e", **extra: object) -> NoteGradingSpec:
    return validate(NoteGradingSpec, {"name": "run-1", "planner": "note_grading",
                                      "grading": {"experiment": experiment}, **extra})


def make_experiment(grading: GradingClient, cases: int, *, notes: int, grades: int, pairs: int = 1,
                    ineligible: int = 0, offline_grader: bool = False) -> None:
    stored = grading.put_cases(
        [case(f"ok-{i}", rubric("dr_a"), rubric("dr_b", days=1), rubric("llm")) for i in range(cases)]
        + [case(f"no-{i}", rubric("dr_a"), rubric("dr_b", Validation.REFUSED)) for i in range(ineligible)])
    experiment = grading.create_experiment(ExperimentDefinition(name="e", note_replications=notes,
                                                                grade_replications=grades))
    grading.add_cases(experiment.id, [c.id for c in stored])
    llm = [grading.add_model(ModelSpec(vendor=Vendor.OPENAI_COMPATIBLE, model=f"m{i}", base_url="http://x:1/v1"))
           for i in range(pairs)]
    grader = grading.add_model(ModelSpec(vendor=Vendor.OFFLINE)) if offline_grader else llm[0]
    for model in llm:
        grading.add_pair(experiment.id, model.id, grader.id)


def test_the_seed_workload_198_cases_5_notes_2_rubrics_2_grades(grading: GradingClient) -> None:
    make_experiment(grading, 198, notes=5, grades=2)
    nodes = get_planner("note_grading").plan(spec(), PlanContext(services={"grading": grading}))
    kinds = Counter(n.kind for n in nodes)
    assert kinds == {"generate_note": 990, "grade_note": 3960}
    assert len({n.name for n in nodes}) == len(nodes)
    progress = grading.progress("e")
    assert (progress.expected_notes, progress.expected_grades) == (990, 3960)


def test_tasks_carry_what_they_need_and_validate(grading: GradingClient) -> None:
    make_experiment(grading, 2, notes=2, grades=3, pairs=2, ineligible=1, offline_grader=True)
    nodes = get_planner("note_grading").plan(spec(seed=7), PlanContext(services={"grading": grading}))
    notes = [n for n in nodes if n.kind == "generate_note"]
    grades = [n for n in nodes if n.kind == "grade_note"]
    assert (len(notes), len(grades)) == (2 * 2 * 2, 2 * 2 * 2 * 2 * 3)
    by_name = {n.name: n for n in notes}
    for node in nodes:                      # every task's params pass its kind's validation
        get_kind(node.kind).validate_params(node.params)
    for node in grades:
        parent = by_name[node.inputs["note"]]
        assert {k: node.params[k] for k in ("case_id", "pair_id", "replication")} == \
               {k: parent.params[k] for k in ("case_id", "pair_id", "replication")}
        assert node.params["model"]["vendor"] == "offline" and node.resources["cpu"] == 1.0
    assert len({n.params["seed"] for n in notes}) == len(notes)           # replications draw differently
    assert len({n.params["seed"] for n in grades}) == len(grades)
    again = get_planner("note_grading").plan(spec(seed=7), PlanContext(services={"grading": grading}))
    assert [n.params for n in again] == [n.params for n in nodes]         # planning is deterministic
    # the ineligible case got no task and its reason is recorded
    detail = grading.get_experiment("e")
    assert [s.case_name for s in detail.skipped] == ["no-0"]
    assert "no eligible rubric" in detail.skipped[0].reason


def test_connects_to_the_store_from_settings_when_not_given_a_client(grading: GradingClient,
                                                                      grading_address: str) -> None:
    make_experiment(grading, 1, notes=1, grades=1)
    assert len(get_planner("note_grading").plan(spec(), PlanContext())) == 1 + 2
    assert len(get_planner("note_grading").plan(
        spec(grading={"experiment": "e", "store_address": grading_address}), PlanContext())) == 3


def test_experiment_without_pairs_or_eligible_cases_is_refused(grading: GradingClient) -> None:
    stored = grading.put_cases([case("lonely", rubric("dr_a"))])
    experiment = grading.create_experiment(ExperimentDefinition(name="e"))
    grading.add_cases(experiment.id, [stored[0].id])
    planner = get_planner("note_grading")
    context = PlanContext(services={"grading": grading})
    with pytest.raises(SpecError, match="no model pairs") as error:
        planner.plan(spec(), context)
    assert error.value.path == "grading.experiment"
    model = grading.add_model(ModelSpec(vendor=Vendor.OFFLINE))
    grading.add_pair(experiment.id, model.id, model.id)
    with pytest.raises(SpecError, match="no eligible case"):
        planner.plan(spec(), context)
    with pytest.raises(Exception, match="unknown grading experiment"):
        planner.plan(spec("missing"), context)


def test_spec_defaults_to_three_workers_and_names_bad_keys() -> None:
    assert spec().options.max_parallel == 3 and spec().options.max_attempts == 3
    assert spec(options={"max_attempts": 5}).options.max_parallel == 3
    with pytest.raises(SpecError) as error:
        validate(NoteGradingSpec, {"name": "r", "planner": "note_grading", "grading": {}}, source="run.yaml")
    assert (error.value.source, error.value.path) == ("run.yaml", "grading.experiment")
