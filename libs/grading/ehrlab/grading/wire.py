"""The grading model to and from its protobuf messages (grader.proto, grading.proto).

Incoming messages become plain dicts first and are validated by the pydantic models, so a bad
request is refused with the same messages and key paths as a bad file (`cases[0].rubrics[1]
.criteria[2].sense: required key is missing`). Unset enums and timestamps become missing keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from ehrlab.core.config import SpecModel, validate
from ehrlab.core.errors import SpecError
from ehrlab.core.wire import from_struct, from_timestamp, to_struct, to_timestamp
from ehrlab.grading.cases import CaseFile
from ehrlab.grading.model import (
    Case,
    Criterion,
    CriterionGrade,
    ErrorRecord,
    Experiment,
    ExperimentDefinition,
    GradeKey,
    GradeResult,
    Model,
    ModelPair,
    ModelSpec,
    NoteKey,
    NoteResult,
    Rubric,
    Sense,
    StoredCase,
    StoredRubric,
    Validation,
)
from ehrlab.v1 import grader_pb2, grading_pb2

M = TypeVar("M", bound=SpecModel)

SENSES = {Sense.POSITIVE: grader_pb2.SENSE_POSITIVE, Sense.NEGATIVE: grader_pb2.SENSE_NEGATIVE}
VALIDATIONS = {Validation.NOT_EVALUATED: grading_pb2.VALIDATION_NOT_EVALUATED,
               Validation.REFUSED: grading_pb2.VALIDATION_REFUSED,
               Validation.ACCEPTED: grading_pb2.VALIDATION_ACCEPTED}


# ---- models -----------------------------------------------------------------------------------------------
def model_ref(spec: ModelSpec) -> grader_pb2.ModelRef:
    return grader_pb2.ModelRef(vendor=spec.vendor.value, model=spec.model, base_url=spec.base_url,
                               credentials_ref=spec.credentials_ref, reasoning_model=spec.reasoning_model)


def model_ref_dict(message: grader_pb2.ModelRef) -> dict[str, Any]:
    return {"vendor": message.vendor, "model": message.model, "base_url": message.base_url,
            "credentials_ref": message.credentials_ref, "reasoning_model": message.reasoning_model}


def model_spec_from(message: grader_pb2.ModelRef, path: str = "model") -> ModelSpec:
    return checked(ModelSpec, model_ref_dict(message), path)


def grading_model(model: Model) -> grading_pb2.GradingModel:
    return grading_pb2.GradingModel(id=model.id, model=model_ref(model))


def model_from(message: grading_pb2.GradingModel) -> Model:
    return Model(id=message.id, **model_ref_dict(message.model))


# ---- criteria, rubrics, cases --------------------------------------------------------------------------------
def criterion(value: Criterion) -> grader_pb2.Criterion:
    return grader_pb2.Criterion(criterion=value.criterion, weight=value.weight, sense=SENSES[value.sense])


def criterion_dict(message: grader_pb2.Criterion) -> dict[str, Any]:
    body: dict[str, Any] = {"criterion": message.criterion, "weight": message.weight}
    for sense, number in SENSES.items():
        if message.sense == number:
            body["sense"] = sense.value
    return body


def criteria_from(messages: Any, path: str = "criteria") -> list[Criterion]:
    return [checked(Criterion, criterion_dict(m), f"{path}[{i}]") for i, m in enumerate(messages)]


def rubric(value: Rubric) -> grading_pb2.Rubric:
    """A rubric, stored (with its ids) or not yet."""
    return grading_pb2.Rubric(id=getattr(value, "id", 0), case_id=getattr(value, "case_id", 0), author=value.author,
                              validation=VALIDATIONS[value.validation], validated_at=to_timestamp(value.validated_at),
                              criteria=[criterion(c) for c in value.criteria],
                              created=to_timestamp(getattr(value, "created", None)))


def rubric_dict(message: grading_pb2.Rubric) -> dict[str, Any]:
    body: dict[str, Any] = {"author": message.author, "criteria": [criterion_dict(c) for c in message.criteria]}
    for validation, number in VALIDATIONS.items():
        if message.validation == number:
            body["validation"] = validation.value
    if message.HasField("validated_at"):
        body["validated_at"] = from_timestamp(message.validated_at)
    return body


def stored_rubric_from(message: grading_pb2.Rubric) -> StoredRubric:
    return StoredRubric(id=message.id, case_id=message.case_id, created=from_timestamp(message.created),
                        **rubric_dict(message))


def grading_case(value: Case | StoredCase, rubrics: Sequence[Rubric] | None = None) -> grading_pb2.GradingCase:
    """A case, stored or not yet, with its rubrics or the ones given."""
    return grading_pb2.GradingCase(id=getattr(value, "id", 0), name=value.name, transcript=value.transcript,
                                   facts=to_struct(value.facts), source=value.source,
                                   created=to_timestamp(getattr(value, "created", None)),
                                   rubrics=[rubric(r) for r in (value.rubrics if rubrics is None else rubrics)])


def case_dict(message: grading_pb2.GradingCase) -> dict[str, Any]:
    return {"name": message.name, "transcript": message.transcript, "facts": from_struct(message.facts),
            "source": message.source, "rubrics": [rubric_dict(r) for r in message.rubrics]}


def stored_case_from(message: grading_pb2.GradingCase) -> StoredCase:
    body = case_dict(message)
    body["rubrics"] = [stored_rubric_from(r) for r in message.rubrics]
    return StoredCase(id=message.id, created=from_timestamp(message.created), **body)


def cases_from(messages: Any) -> list[Case]:
    return validate(CaseFile, {"cases": [case_dict(m) for m in messages]}).cases


# ---- experiments ------------------------------------------------------------------------------------------------
def experiment(value: Experiment) -> grading_pb2.GradingExperiment:
    return grading_pb2.GradingExperiment(id=value.id, name=value.name, code_version=value.code_version,
                                         note_replications=value.note_replications,
                                         grade_replications=value.grade_replications, description=value.description,
                                         created=to_timestamp(value.created))


def definition_from(message: grading_pb2.GradingExperiment) -> ExperimentDefinition:
    return checked(ExperimentDefinition, {"name": message.name, "code_version": message.code_version,
                                          "note_replications": message.note_replications,
                                          "grade_replications": message.grade_replications,
                                          "description": message.description}, "experiment")


def experiment_from(message: grading_pb2.GradingExperiment) -> Experiment:
    return Experiment(id=message.id, name=message.name, code_version=message.code_version,
                      note_replications=message.note_replications, grade_replications=message.grade_replications,
                      description=message.description, created=from_timestamp(message.created))


def pair(value: ModelPair) -> grading_pb2.ModelPair:
    return grading_pb2.ModelPair(id=value.id, experiment_id=value.experiment_id,
                                 generator=grading_model(value.generator), grader=grading_model(value.grader),
                                 grader_is_reasoning=value.grader_is_reasoning, label=value.label)


def pair_from(message: grading_pb2.ModelPair) -> ModelPair:
    return ModelPair(id=message.id, experiment_id=message.experiment_id, generator=model_from(message.generator),
                     grader=model_from(message.grader), grader_is_reasoning=message.grader_is_reasoning)


# ---- notes and grades ---------------------------------------------------------------------------------------------
def error(value: ErrorRecord) -> grading_pb2.ErrorRecord:
    return grading_pb2.ErrorRecord(attempt=value.attempt, type=value.type, message=value.message,
                                   time=to_timestamp(value.time))


def error_from(message: grading_pb2.ErrorRecord) -> ErrorRecord:
    return ErrorRecord(attempt=message.attempt, type=message.type or "error", message=message.message,
                       time=from_timestamp(message.time))


def note_key(value: NoteKey) -> grading_pb2.NoteKey:
    return grading_pb2.NoteKey(experiment_id=value.experiment_id, case_id=value.case_id, pair_id=value.pair_id,
                               replication=value.replication)


def note_key_from(message: grading_pb2.NoteKey) -> NoteKey:
    return checked(NoteKey, {"experiment_id": message.experiment_id, "case_id": message.case_id,
                             "pair_id": message.pair_id, "replication": message.replication}, "key")


def note_result(value: NoteResult) -> grading_pb2.NoteResult:
    return grading_pb2.NoteResult(id=value.id, key=note_key(value), note=to_struct(value.note), failed=value.failed,
                                  errors=[error(e) for e in value.errors], attempts=value.attempts,
                                  updated=to_timestamp(value.updated))


def note_result_from(message: grading_pb2.NoteResult) -> NoteResult:
    return NoteResult(id=message.id, **note_key_from(message.key).model_dump(),
                      note=from_struct(message.note) if not message.failed else None, failed=message.failed,
                      errors=[error_from(e) for e in message.errors], attempts=message.attempts,
                      updated=from_timestamp(message.updated))


def criterion_grade(value: CriterionGrade) -> grader_pb2.CriterionGrade:
    return grader_pb2.CriterionGrade(id=value.id, rationale=value.rationale, satisfaction=value.satisfaction,
                                     score=value.score)


def criterion_grades_from(messages: Any, path: str = "grades") -> list[CriterionGrade]:
    return [checked(CriterionGrade, {"id": m.id, "rationale": m.rationale, "satisfaction": m.satisfaction,
                                     "score": m.score}, f"{path}[{i}]") for i, m in enumerate(messages)]


def grade_key(value: GradeKey) -> grading_pb2.GradeKey:
    return grading_pb2.GradeKey(result_id=value.result_id, rubric_id=value.rubric_id, replication=value.replication)


def grade_key_from(message: grading_pb2.GradeKey) -> GradeKey:
    return checked(GradeKey, {"result_id": message.result_id, "rubric_id": message.rubric_id,
                              "replication": message.replication}, "key")


def grade_result(value: GradeResult) -> grading_pb2.GradeResult:
    return grading_pb2.GradeResult(id=value.id, key=grade_key(value), grades=[criterion_grade(g) for g in value.grades],
                                   overall=value.overall or 0.0, failed=value.failed,
                                   errors=[error(e) for e in value.errors], attempts=value.attempts,
                                   updated=to_timestamp(value.updated))


def grade_result_from(message: grading_pb2.GradeResult) -> GradeResult:
    return GradeResult(id=message.id, **grade_key_from(message.key).model_dump(),
                       grades=criterion_grades_from(message.grades),
                       overall=None if message.failed else message.overall, failed=message.failed,
                       errors=[error_from(e) for e in message.errors], attempts=message.attempts,
                       updated=from_timestamp(message.updated))


def checked(model: type[M], body: dict[str, Any], path: str) -> M:
    """Validates `body`, naming `path` before the failing key in the error."""
    try:
        return validate(model, body)
    except SpecError as exc:
        raise SpecError(exc.message, path=".".join(p for p in (path, exc.path) if p)) from None
