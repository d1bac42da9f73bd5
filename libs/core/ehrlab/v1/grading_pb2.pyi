import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ehrlab.v1 import common_pb2 as _common_pb2
from ehrlab.v1 import grader_pb2 as _grader_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Validation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALIDATION_UNSPECIFIED: _ClassVar[Validation]
    VALIDATION_NOT_EVALUATED: _ClassVar[Validation]
    VALIDATION_REFUSED: _ClassVar[Validation]
    VALIDATION_ACCEPTED: _ClassVar[Validation]
VALIDATION_UNSPECIFIED: Validation
VALIDATION_NOT_EVALUATED: Validation
VALIDATION_REFUSED: Validation
VALIDATION_ACCEPTED: Validation

class Rubric(_message.Message):
    __slots__ = ("id", "case_id", "author", "validation", "validated_at", "criteria", "created")
    ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FIELD_NUMBER: _ClassVar[int]
    VALIDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    id: int
    case_id: int
    author: str
    validation: Validation
    validated_at: _timestamp_pb2.Timestamp
    criteria: _containers.RepeatedCompositeFieldContainer[_grader_pb2.Criterion]
    created: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., case_id: _Optional[int] = ..., author: _Optional[str] = ..., validation: _Optional[_Union[Validation, str]] = ..., validated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., criteria: _Optional[_Iterable[_Union[_grader_pb2.Criterion, _Mapping]]] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GradingCase(_message.Message):
    __slots__ = ("id", "name", "transcript", "facts", "source", "rubrics", "created")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RUBRICS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    transcript: str
    facts: _struct_pb2.Struct
    source: str
    rubrics: _containers.RepeatedCompositeFieldContainer[Rubric]
    created: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., transcript: _Optional[str] = ..., facts: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., source: _Optional[str] = ..., rubrics: _Optional[_Iterable[_Union[Rubric, _Mapping]]] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CaseSummary(_message.Message):
    __slots__ = ("id", "name", "source", "rubrics", "accepted", "human_authors")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RUBRICS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    HUMAN_AUTHORS_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    source: str
    rubrics: int
    accepted: int
    human_authors: int
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., source: _Optional[str] = ..., rubrics: _Optional[int] = ..., accepted: _Optional[int] = ..., human_authors: _Optional[int] = ...) -> None: ...

class PutCasesRequest(_message.Message):
    __slots__ = ("cases",)
    CASES_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[GradingCase]
    def __init__(self, cases: _Optional[_Iterable[_Union[GradingCase, _Mapping]]] = ...) -> None: ...

class PutCasesResponse(_message.Message):
    __slots__ = ("cases",)
    CASES_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[GradingCase]
    def __init__(self, cases: _Optional[_Iterable[_Union[GradingCase, _Mapping]]] = ...) -> None: ...

class GetCasesRequest(_message.Message):
    __slots__ = ("ids", "names")
    IDS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[int]] = ..., names: _Optional[_Iterable[str]] = ...) -> None: ...

class GetCasesResponse(_message.Message):
    __slots__ = ("cases",)
    CASES_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[GradingCase]
    def __init__(self, cases: _Optional[_Iterable[_Union[GradingCase, _Mapping]]] = ...) -> None: ...

class ListCasesRequest(_message.Message):
    __slots__ = ("page",)
    PAGE_FIELD_NUMBER: _ClassVar[int]
    page: _common_pb2.PageRequest
    def __init__(self, page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListCasesResponse(_message.Message):
    __slots__ = ("cases", "next_page_token")
    CASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[CaseSummary]
    next_page_token: str
    def __init__(self, cases: _Optional[_Iterable[_Union[CaseSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class EligibleCasesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EligibleCasesResponse(_message.Message):
    __slots__ = ("cases",)
    CASES_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[CaseSummary]
    def __init__(self, cases: _Optional[_Iterable[_Union[CaseSummary, _Mapping]]] = ...) -> None: ...

class GradingModel(_message.Message):
    __slots__ = ("id", "model")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    id: int
    model: _grader_pb2.ModelRef
    def __init__(self, id: _Optional[int] = ..., model: _Optional[_Union[_grader_pb2.ModelRef, _Mapping]] = ...) -> None: ...

class AddModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _grader_pb2.ModelRef
    def __init__(self, model: _Optional[_Union[_grader_pb2.ModelRef, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[GradingModel]
    def __init__(self, models: _Optional[_Iterable[_Union[GradingModel, _Mapping]]] = ...) -> None: ...

class GradingExperiment(_message.Message):
    __slots__ = ("id", "name", "code_version", "note_replications", "grade_replications", "description", "created")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    NOTE_REPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    GRADE_REPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    code_version: str
    note_replications: int
    grade_replications: int
    description: str
    created: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., code_version: _Optional[str] = ..., note_replications: _Optional[int] = ..., grade_replications: _Optional[int] = ..., description: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ModelPair(_message.Message):
    __slots__ = ("id", "experiment_id", "generator", "grader", "grader_is_reasoning", "label")
    ID_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    GRADER_FIELD_NUMBER: _ClassVar[int]
    GRADER_IS_REASONING_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    id: int
    experiment_id: int
    generator: GradingModel
    grader: GradingModel
    grader_is_reasoning: bool
    label: str
    def __init__(self, id: _Optional[int] = ..., experiment_id: _Optional[int] = ..., generator: _Optional[_Union[GradingModel, _Mapping]] = ..., grader: _Optional[_Union[GradingModel, _Mapping]] = ..., grader_is_reasoning: _Optional[bool] = ..., label: _Optional[str] = ...) -> None: ...

class SkippedCase(_message.Message):
    __slots__ = ("case_id", "case_name", "reason", "time")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    case_id: int
    case_name: str
    reason: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, case_id: _Optional[int] = ..., case_name: _Optional[str] = ..., reason: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateExperimentRequest(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: GradingExperiment
    def __init__(self, experiment: _Optional[_Union[GradingExperiment, _Mapping]] = ...) -> None: ...

class GetGradingExperimentRequest(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    def __init__(self, experiment: _Optional[str] = ...) -> None: ...

class ExperimentDetail(_message.Message):
    __slots__ = ("experiment", "case_ids", "pairs", "skipped")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    CASE_IDS_FIELD_NUMBER: _ClassVar[int]
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    experiment: GradingExperiment
    case_ids: _containers.RepeatedScalarFieldContainer[int]
    pairs: _containers.RepeatedCompositeFieldContainer[ModelPair]
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedCase]
    def __init__(self, experiment: _Optional[_Union[GradingExperiment, _Mapping]] = ..., case_ids: _Optional[_Iterable[int]] = ..., pairs: _Optional[_Iterable[_Union[ModelPair, _Mapping]]] = ..., skipped: _Optional[_Iterable[_Union[SkippedCase, _Mapping]]] = ...) -> None: ...

class ListGradingExperimentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListGradingExperimentsResponse(_message.Message):
    __slots__ = ("experiments",)
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    experiments: _containers.RepeatedCompositeFieldContainer[GradingExperiment]
    def __init__(self, experiments: _Optional[_Iterable[_Union[GradingExperiment, _Mapping]]] = ...) -> None: ...

class AddCasesRequest(_message.Message):
    __slots__ = ("experiment", "case_ids", "all_eligible")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    CASE_IDS_FIELD_NUMBER: _ClassVar[int]
    ALL_ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    case_ids: _containers.RepeatedScalarFieldContainer[int]
    all_eligible: bool
    def __init__(self, experiment: _Optional[str] = ..., case_ids: _Optional[_Iterable[int]] = ..., all_eligible: _Optional[bool] = ...) -> None: ...

class AddCasesResponse(_message.Message):
    __slots__ = ("added", "total")
    ADDED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    added: int
    total: int
    def __init__(self, added: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class AddModelPairRequest(_message.Message):
    __slots__ = ("experiment", "generator_model_id", "grader_model_id", "grader_is_reasoning")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    GRADER_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    GRADER_IS_REASONING_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    generator_model_id: int
    grader_model_id: int
    grader_is_reasoning: bool
    def __init__(self, experiment: _Optional[str] = ..., generator_model_id: _Optional[int] = ..., grader_model_id: _Optional[int] = ..., grader_is_reasoning: _Optional[bool] = ...) -> None: ...

class PlanCasesRequest(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    def __init__(self, experiment: _Optional[str] = ...) -> None: ...

class CasePlan(_message.Message):
    __slots__ = ("case", "skip_reason")
    CASE_FIELD_NUMBER: _ClassVar[int]
    SKIP_REASON_FIELD_NUMBER: _ClassVar[int]
    case: GradingCase
    skip_reason: str
    def __init__(self, case: _Optional[_Union[GradingCase, _Mapping]] = ..., skip_reason: _Optional[str] = ...) -> None: ...

class PlanCasesResponse(_message.Message):
    __slots__ = ("experiment", "cases", "pairs")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    CASES_FIELD_NUMBER: _ClassVar[int]
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    experiment: GradingExperiment
    cases: _containers.RepeatedCompositeFieldContainer[CasePlan]
    pairs: _containers.RepeatedCompositeFieldContainer[ModelPair]
    def __init__(self, experiment: _Optional[_Union[GradingExperiment, _Mapping]] = ..., cases: _Optional[_Iterable[_Union[CasePlan, _Mapping]]] = ..., pairs: _Optional[_Iterable[_Union[ModelPair, _Mapping]]] = ...) -> None: ...

class RecordSkipsRequest(_message.Message):
    __slots__ = ("experiment_id", "skipped")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    experiment_id: int
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedCase]
    def __init__(self, experiment_id: _Optional[int] = ..., skipped: _Optional[_Iterable[_Union[SkippedCase, _Mapping]]] = ...) -> None: ...

class RecordSkipsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ErrorRecord(_message.Message):
    __slots__ = ("attempt", "type", "message", "time")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    type: str
    message: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, attempt: _Optional[int] = ..., type: _Optional[str] = ..., message: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class NoteKey(_message.Message):
    __slots__ = ("experiment_id", "case_id", "pair_id", "replication")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    PAIR_ID_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    experiment_id: int
    case_id: int
    pair_id: int
    replication: int
    def __init__(self, experiment_id: _Optional[int] = ..., case_id: _Optional[int] = ..., pair_id: _Optional[int] = ..., replication: _Optional[int] = ...) -> None: ...

class NoteResult(_message.Message):
    __slots__ = ("id", "key", "note", "failed", "errors", "attempts", "updated")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    id: int
    key: NoteKey
    note: _struct_pb2.Struct
    failed: bool
    errors: _containers.RepeatedCompositeFieldContainer[ErrorRecord]
    attempts: int
    updated: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., key: _Optional[_Union[NoteKey, _Mapping]] = ..., note: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., failed: _Optional[bool] = ..., errors: _Optional[_Iterable[_Union[ErrorRecord, _Mapping]]] = ..., attempts: _Optional[int] = ..., updated: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetNoteResponse(_message.Message):
    __slots__ = ("note",)
    NOTE_FIELD_NUMBER: _ClassVar[int]
    note: NoteResult
    def __init__(self, note: _Optional[_Union[NoteResult, _Mapping]] = ...) -> None: ...

class RecordNoteRequest(_message.Message):
    __slots__ = ("key", "attempt", "note", "error")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    key: NoteKey
    attempt: int
    note: _struct_pb2.Struct
    error: ErrorRecord
    def __init__(self, key: _Optional[_Union[NoteKey, _Mapping]] = ..., attempt: _Optional[int] = ..., note: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[_Union[ErrorRecord, _Mapping]] = ...) -> None: ...

class GradeKey(_message.Message):
    __slots__ = ("result_id", "rubric_id", "replication")
    RESULT_ID_FIELD_NUMBER: _ClassVar[int]
    RUBRIC_ID_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    result_id: int
    rubric_id: int
    replication: int
    def __init__(self, result_id: _Optional[int] = ..., rubric_id: _Optional[int] = ..., replication: _Optional[int] = ...) -> None: ...

class GradeResult(_message.Message):
    __slots__ = ("id", "key", "grades", "overall", "failed", "errors", "attempts", "updated")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    GRADES_FIELD_NUMBER: _ClassVar[int]
    OVERALL_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    id: int
    key: GradeKey
    grades: _containers.RepeatedCompositeFieldContainer[_grader_pb2.CriterionGrade]
    overall: float
    failed: bool
    errors: _containers.RepeatedCompositeFieldContainer[ErrorRecord]
    attempts: int
    updated: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., key: _Optional[_Union[GradeKey, _Mapping]] = ..., grades: _Optional[_Iterable[_Union[_grader_pb2.CriterionGrade, _Mapping]]] = ..., overall: _Optional[float] = ..., failed: _Optional[bool] = ..., errors: _Optional[_Iterable[_Union[ErrorRecord, _Mapping]]] = ..., attempts: _Optional[int] = ..., updated: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetGradeResponse(_message.Message):
    __slots__ = ("grade",)
    GRADE_FIELD_NUMBER: _ClassVar[int]
    grade: GradeResult
    def __init__(self, grade: _Optional[_Union[GradeResult, _Mapping]] = ...) -> None: ...

class GradeOutcome(_message.Message):
    __slots__ = ("grades", "overall")
    GRADES_FIELD_NUMBER: _ClassVar[int]
    OVERALL_FIELD_NUMBER: _ClassVar[int]
    grades: _containers.RepeatedCompositeFieldContainer[_grader_pb2.CriterionGrade]
    overall: float
    def __init__(self, grades: _Optional[_Iterable[_Union[_grader_pb2.CriterionGrade, _Mapping]]] = ..., overall: _Optional[float] = ...) -> None: ...

class RecordGradeRequest(_message.Message):
    __slots__ = ("key", "attempt", "success", "error")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    key: GradeKey
    attempt: int
    success: GradeOutcome
    error: ErrorRecord
    def __init__(self, key: _Optional[_Union[GradeKey, _Mapping]] = ..., attempt: _Optional[int] = ..., success: _Optional[_Union[GradeOutcome, _Mapping]] = ..., error: _Optional[_Union[ErrorRecord, _Mapping]] = ...) -> None: ...

class OutcomeCounts(_message.Message):
    __slots__ = ("total", "successful", "failed", "last_update")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_FIELD_NUMBER: _ClassVar[int]
    total: int
    successful: int
    failed: int
    last_update: _timestamp_pb2.Timestamp
    def __init__(self, total: _Optional[int] = ..., successful: _Optional[int] = ..., failed: _Optional[int] = ..., last_update: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GradingProgressRequest(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    def __init__(self, experiment: _Optional[str] = ...) -> None: ...

class GradingProgress(_message.Message):
    __slots__ = ("notes", "grades", "expected_notes", "expected_grades", "cases", "skipped_cases")
    NOTES_FIELD_NUMBER: _ClassVar[int]
    GRADES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_NOTES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GRADES_FIELD_NUMBER: _ClassVar[int]
    CASES_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_CASES_FIELD_NUMBER: _ClassVar[int]
    notes: OutcomeCounts
    grades: OutcomeCounts
    expected_notes: int
    expected_grades: int
    cases: int
    skipped_cases: int
    def __init__(self, notes: _Optional[_Union[OutcomeCounts, _Mapping]] = ..., grades: _Optional[_Union[OutcomeCounts, _Mapping]] = ..., expected_notes: _Optional[int] = ..., expected_grades: _Optional[int] = ..., cases: _Optional[int] = ..., skipped_cases: _Optional[int] = ...) -> None: ...

class RecentActivityRequest(_message.Message):
    __slots__ = ("experiment", "limit")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    limit: int
    def __init__(self, experiment: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class Activity(_message.Message):
    __slots__ = ("what", "id", "case_id", "pair_id", "replication", "rubric_id", "failed", "updated")
    WHAT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    PAIR_ID_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FIELD_NUMBER: _ClassVar[int]
    RUBRIC_ID_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    what: str
    id: int
    case_id: int
    pair_id: int
    replication: int
    rubric_id: int
    failed: bool
    updated: _timestamp_pb2.Timestamp
    def __init__(self, what: _Optional[str] = ..., id: _Optional[int] = ..., case_id: _Optional[int] = ..., pair_id: _Optional[int] = ..., replication: _Optional[int] = ..., rubric_id: _Optional[int] = ..., failed: _Optional[bool] = ..., updated: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecentActivityResponse(_message.Message):
    __slots__ = ("activity",)
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    activity: _containers.RepeatedCompositeFieldContainer[Activity]
    def __init__(self, activity: _Optional[_Iterable[_Union[Activity, _Mapping]]] = ...) -> None: ...

class ListResultsRequest(_message.Message):
    __slots__ = ("experiment", "page")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    page: _common_pb2.PageRequest
    def __init__(self, experiment: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListNotesResponse(_message.Message):
    __slots__ = ("notes", "next_page_token")
    NOTES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    notes: _containers.RepeatedCompositeFieldContainer[NoteResult]
    next_page_token: str
    def __init__(self, notes: _Optional[_Iterable[_Union[NoteResult, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListGradesResponse(_message.Message):
    __slots__ = ("grades", "next_page_token")
    GRADES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    grades: _containers.RepeatedCompositeFieldContainer[GradeResult]
    next_page_token: str
    def __init__(self, grades: _Optional[_Iterable[_Union[GradeResult, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
