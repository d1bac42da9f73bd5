"""The GradingStore service over real PostgreSQL and real gRPC: cases, eligibility, models, experiments,
notes and grades stored once, failures with their errors, progress."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from ehrlab.core.errors import ConflictError, NotFoundError, SpecError
from ehrlab.grading.client import GradingClient
from ehrlab.grading.model import (
    CriterionGrade,
    ErrorRecord,
    ExperimentDefinition,
    GradeKey,
    ModelSpec,
    NoteKey,
    Validation,
    Vendor,
)
from ehrlab.grading.store import GradingStore
from ehrlab.v1 import grader_pb2, grading_pb2
from tests.grading.conftest import case, rubric

OFFLINE = ModelSpec(vendor=Vendor.OFFLINE, model="template")


def count(store: GradingStore, table: str) -> int:
    return store.db.fetch_one(f"SELECT count(*) AS n FROM {table}")["n"]


def test_cases_round_trip_and_loading_twice_changes_nothing(grading: GradingClient, store: GradingStore) -> None:
    cases = [case("a", rubric("dr_a"), rubric("dr_b", days=1)), case("b", rubric("dr_a"))]
    first = grading.put_cases(cases)
    again = grading.put_cases(cases)
    assert [c.id for c in first] == [c.id for c in again]
    assert count(store, "grading_case") == 2 and count(store, "grading_rubric") == 3
    fetched = grading.get_cases(names=["a"])[0]
    assert fetched.transcript == cases[0].transcript and fetched.facts == cases[0].facts
    assert [r.criteria for r in fetched.rubrics] == [r.criteria for r in cases[0].rubrics]
    assert fetched.rubrics[1].validated_at == cases[0].rubrics[1].validated_at


def test_a_changed_case_under_a_known_name_is_a_conflict_and_nothing_is_written(
        grading: GradingClient, store: GradingStore) -> None:
    grading.put_cases([case("a", rubric("dr_a"))])
    changed = case("a", rubric("dr_b")).model_copy(update={"transcript": "DOCTOR: something else"})
    with pytest.raises(ConflictError, match="'a'"):
        grading.put_cases([case("new", rubric("dr_c")), changed])
    assert count(store, "grading_case") == 1 and count(store, "grading_rubric") == 1


def test_bad_rubric_over_grpc_names_the_field(grading: GradingClient, store: GradingStore) -> None:
    message = grading_pb2.PutCasesRequest(cases=[grading_pb2.GradingCase(name="x", transcript="t", rubrics=[
        grading_pb2.Rubric(author="dr_a", criteria=[grader_pb2.Criterion(criterion="c", weight=1)])])])
    with pytest.raises(SpecError) as error:
        grading._call(grading.stub.PutCases, message)
    assert error.value.path == "cases[0].rubrics[0].criteria[0].sense"
    assert count(store, "grading_case") == 0


def test_eligibility_needs_two_distinct_human_authors_with_accepted_rubrics(grading: GradingClient) -> None:
    grading.put_cases([
        case("two-humans", rubric("dr_a"), rubric("dr_b")),
        case("same-author-twice", rubric("dr_a"), rubric("dr_a", days=3)),
        case("human-and-llm", rubric("dr_a"), rubric("llm")),
        case("one-refused", rubric("dr_a"), rubric("dr_b", Validation.REFUSED)),
        case("one-unevaluated", rubric("dr_a"), rubric("dr_b", Validation.NOT_EVALUATED)),
        case("three-humans", rubric("dr_a"), rubric("dr_b"), rubric("dr_c")),
    ])
    eligible = {c.name: c.human_authors for c in grading.eligible_cases()}
    assert eligible == {"two-humans": 2, "three-humans": 3}


def test_plan_uses_latest_accepted_rubric_of_up_to_two_distinct_authors(grading: GradingClient) -> None:
    stored = grading.put_cases([
        case("c", rubric("dr_a", days=0), rubric("dr_a", days=10), rubric("dr_b", days=5),
             rubric("dr_c", days=1), rubric("dr_b", Validation.REFUSED, days=20), rubric("llm", days=30)),
        case("lonely", rubric("dr_a"), rubric("llm", days=2))])
    by_day = {(r.author, r.validated_at.day): r.id for r in stored[0].rubrics}
    experiment = grading.create_experiment(ExperimentDefinition(name="e", note_replications=1, grade_replications=1))
    grading.add_cases(experiment.id, [c.id for c in stored])
    plan = {p.case.name: p for p in grading.plan_cases("e").cases}
    # dr_a's latest (day 11) and dr_b's latest accepted (day 6); dr_c (day 2) is older than both
    assert [r.id for r in plan["c"].case.rubrics] == [by_day[("dr_a", 11)], by_day[("dr_b", 6)]]
    assert plan["c"].skip_reason == ""
    assert plan["lonely"].case.rubrics == [] and "1 human author" in plan["lonely"].skip_reason


def test_models_are_stored_once_and_unknown_ids_are_named(grading: GradingClient) -> None:
    model = grading.add_model(ModelSpec(vendor=Vendor.OPENAI, model="gpt-4.1", credentials_ref="openai"))
    assert grading.add_model(ModelSpec(vendor=Vendor.OPENAI, model="gpt-4.1", credentials_ref="openai")).id == model.id
    assert [m.credentials_ref for m in grading.list_models()] == ["openai"]
    grading.create_experiment(ExperimentDefinition(name="e"))
    with pytest.raises(SpecError) as error:
        grading.add_pair("e", model.id, 999)
    assert error.value.path == "grader" and "unknown model id 999" in str(error.value)


def test_experiment_create_is_idempotent_but_a_different_definition_conflicts(grading: GradingClient) -> None:
    first = grading.create_experiment(ExperimentDefinition(name="e", note_replications=5, grade_replications=2))
    assert first.code_version  # defaults to the grading code version
    assert grading.create_experiment(ExperimentDefinition(name="e", note_replications=5, grade_replications=2,
                                                          code_version=first.code_version)).id == first.id
    with pytest.raises(ConflictError, match="different definition"):
        grading.create_experiment(ExperimentDefinition(name="e", note_replications=3, grade_replications=2,
                                                       code_version=first.code_version))
    with pytest.raises(SpecError) as error:
        grading.create_experiment(ExperimentDefinition.model_construct(name="bad name", note_replications=1,
                                                                       grade_replications=1, code_version="",
                                                                       description=""))
    assert error.value.path == "experiment.name"


def test_adding_unknown_cases_writes_nothing(grading: GradingClient, store: GradingStore) -> None:
    known = grading.put_cases([case("a", rubric("dr_a"), rubric("dr_b"))])[0]
    grading.create_experiment(ExperimentDefinition(name="e"))
    with pytest.raises(NotFoundError, match="998, 999"):
        grading.add_cases("e", [known.id, 998, 999])
    assert count(store, "grading_experiment_case") == 0
    assert grading.add_cases("e", [known.id, known.id]).added == 1
    assert grading.add_cases("e", all_eligible=True).added == 0
    with pytest.raises(NotFoundError, match="unknown grading experiment 'nope'"):
        grading.add_cases("nope", [known.id])


@pytest.fixture
def experiment(grading: GradingClient) -> tuple[int, int, int, list[int]]:
    """An experiment with one eligible case, one pair: (experiment id, case id, pair id, rubric ids)."""
    stored = grading.put_cases([case("a", rubric("dr_a"), rubric("dr_b"))])[0]
    experiment = grading.create_experiment(ExperimentDefinition(name="e", note_replications=2, grade_replications=2))
    grading.add_cases(experiment.id, [stored.id])
    model = grading.add_model(OFFLINE)
    pair = grading.add_pair(experiment.id, model.id, model.id)
    return experiment.id, stored.id, pair.id, [r.id for r in stored.rubrics]


def _recorded(what: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("ehrlab_grading_results_total", {"what": what, "outcome": outcome}) or 0.0


def test_a_note_is_stored_once_and_failures_keep_their_errors(grading: GradingClient, experiment: tuple) -> None:
    experiment_id, case_id, pair_id, _ = experiment
    ok_before, failed_before = _recorded("note", "ok"), _recorded("note", "failed")
    key = NoteKey(experiment_id=experiment_id, case_id=case_id, pair_id=pair_id, replication=0)
    assert grading.get_note(key) is None
    failed = grading.record_note_failure(key, ErrorRecord(attempt=1, type="rate_limit", message="429"))
    assert failed.failed and [e.type for e in failed.errors] == ["rate_limit"]
    grading.record_note_failure(key, ErrorRecord(attempt=2, type="timeout", message="slow"))
    stored = grading.record_note(key, {"plan": "first"}, attempt=3)
    assert not stored.failed and stored.note == {"plan": "first"} and stored.attempts == 3
    assert [(e.attempt, e.type) for e in stored.errors] == [(1, "rate_limit"), (2, "timeout")]
    # a duplicate attempt (a worker killed after writing, then retried) gets the stored note back
    again = grading.record_note(key, {"plan": "second"}, attempt=4)
    assert again.id == stored.id and again.note == {"plan": "first"}
    late = grading.record_note_failure(key, ErrorRecord(attempt=5, type="timeout", message="late"))
    assert not late.failed and len(late.errors) == 2
    # the result-store's /metrics counts the attempts recorded
    assert (_recorded("note", "ok") - ok_before, _recorded("note", "failed") - failed_before) == (2, 3)


def test_a_note_must_belong_to_a_case_and_pair_of_its_experiment(grading: GradingClient, experiment: tuple) -> None:
    experiment_id, case_id, pair_id, _ = experiment
    other = grading.put_cases([case("other", rubric("dr_a"), rubric("dr_b"))])[0]
    with pytest.raises(NotFoundError, match="unknown reference"):
        grading.record_note(NoteKey(experiment_id=experiment_id, case_id=other.id, pair_id=pair_id, replication=0),
                            {"plan": "x"}, attempt=1)
    with pytest.raises(NotFoundError):
        grading.record_note(NoteKey(experiment_id=experiment_id, case_id=case_id, pair_id=pair_id + 100,
                                    replication=0), {"plan": "x"}, attempt=1)


def test_grades_are_stored_once_and_progress_counts_them(grading: GradingClient, experiment: tuple) -> None:
    experiment_id, case_id, pair_id, rubric_ids = experiment
    note = grading.record_note(NoteKey(experiment_id=experiment_id, case_id=case_id, pair_id=pair_id,
                                       replication=0), {"plan": "x"}, attempt=1)
    grading.record_note_failure(NoteKey(experiment_id=experiment_id, case_id=case_id, pair_id=pair_id,
                                        replication=1), ErrorRecord(attempt=1, type="timeout", message="slow"))
    key = GradeKey(result_id=note.id, rubric_id=rubric_ids[0], replication=0)
    grades = [CriterionGrade(id=0, satisfaction=50, score=0.5, rationale="half")]
    stored = grading.record_grade(key, grades, 0.5, attempt=1)
    assert grading.record_grade(key, [CriterionGrade(id=0, satisfaction=0)], 0.0, attempt=2).overall == 0.5
    assert grading.get_grade(key).grades == stored.grades
    grading.record_grade_failure(GradeKey(result_id=note.id, rubric_id=rubric_ids[1], replication=1),
                                 ErrorRecord(attempt=3, type="malformed_output", message="not JSON"))
    with pytest.raises(NotFoundError, match="unknown note"):
        grading.record_grade(GradeKey(result_id=note.id + 99, rubric_id=rubric_ids[0], replication=0), grades, 1, 1)

    progress = grading.progress("e")
    assert (progress.notes.total, progress.notes.successful, progress.notes.failed) == (2, 1, 1)
    assert (progress.grades.total, progress.grades.successful, progress.grades.failed) == (2, 1, 1)
    # 1 case × 1 pair × 2 note replications; × 2 rubrics × 2 grade replications
    assert (progress.expected_notes, progress.expected_grades) == (2, 8)
    recent = grading.recent("e", limit=3)
    assert len(recent) == 3 and recent[0].what == "grade" and recent[0].failed
    assert [g.overall for g in grading.grades("e")] == [0.5, None]
    assert sorted(n.failed for n in grading.notes("e")) == [False, True]


def test_skips_are_recorded_and_cleared(grading: GradingClient, experiment: tuple) -> None:
    experiment_id, case_id, _, _ = experiment
    grading.record_skips(experiment_id, {case_id: "no eligible rubric"})
    detail = grading.get_experiment("e")
    assert [(s.case_id, s.reason) for s in detail.skipped] == [(case_id, "no eligible rubric")]
    grading.record_skips(experiment_id, {})
    assert list(grading.get_experiment("e").skipped) == []
