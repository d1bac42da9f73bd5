from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Sense(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SENSE_UNSPECIFIED: _ClassVar[Sense]
    SENSE_POSITIVE: _ClassVar[Sense]
    SENSE_NEGATIVE: _ClassVar[Sense]
SENSE_UNSPECIFIED: Sense
SENSE_POSITIVE: Sense
SENSE_NEGATIVE: Sense

class ModelRef(_message.Message):
    __slots__ = ("vendor", "model", "base_url", "credentials_ref", "reasoning_model")
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_REF_FIELD_NUMBER: _ClassVar[int]
    REASONING_MODEL_FIELD_NUMBER: _ClassVar[int]
    vendor: str
    model: str
    base_url: str
    credentials_ref: str
    reasoning_model: str
    def __init__(self, vendor: _Optional[str] = ..., model: _Optional[str] = ..., base_url: _Optional[str] = ..., credentials_ref: _Optional[str] = ..., reasoning_model: _Optional[str] = ...) -> None: ...

class Criterion(_message.Message):
    __slots__ = ("criterion", "weight", "sense")
    CRITERION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    SENSE_FIELD_NUMBER: _ClassVar[int]
    criterion: str
    weight: float
    sense: Sense
    def __init__(self, criterion: _Optional[str] = ..., weight: _Optional[float] = ..., sense: _Optional[_Union[Sense, str]] = ...) -> None: ...

class GenerateNoteRequest(_message.Message):
    __slots__ = ("model", "transcript", "facts", "seed", "timeout_seconds")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    model: ModelRef
    transcript: str
    facts: _struct_pb2.Struct
    seed: int
    timeout_seconds: float
    def __init__(self, model: _Optional[_Union[ModelRef, _Mapping]] = ..., transcript: _Optional[str] = ..., facts: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., seed: _Optional[int] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class GenerateNoteResponse(_message.Message):
    __slots__ = ("note", "model_used")
    NOTE_FIELD_NUMBER: _ClassVar[int]
    MODEL_USED_FIELD_NUMBER: _ClassVar[int]
    note: _struct_pb2.Struct
    model_used: str
    def __init__(self, note: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., model_used: _Optional[str] = ...) -> None: ...

class CriterionGrade(_message.Message):
    __slots__ = ("id", "rationale", "satisfaction", "score")
    ID_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    SATISFACTION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    id: int
    rationale: str
    satisfaction: float
    score: float
    def __init__(self, id: _Optional[int] = ..., rationale: _Optional[str] = ..., satisfaction: _Optional[float] = ..., score: _Optional[float] = ...) -> None: ...

class GradeNoteRequest(_message.Message):
    __slots__ = ("model", "note", "criteria", "transcript", "seed", "reasoning", "timeout_seconds")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    REASONING_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    model: ModelRef
    note: _struct_pb2.Struct
    criteria: _containers.RepeatedCompositeFieldContainer[Criterion]
    transcript: str
    seed: int
    reasoning: bool
    timeout_seconds: float
    def __init__(self, model: _Optional[_Union[ModelRef, _Mapping]] = ..., note: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., criteria: _Optional[_Iterable[_Union[Criterion, _Mapping]]] = ..., transcript: _Optional[str] = ..., seed: _Optional[int] = ..., reasoning: _Optional[bool] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class GradeNoteResponse(_message.Message):
    __slots__ = ("grades", "overall", "model_used")
    GRADES_FIELD_NUMBER: _ClassVar[int]
    OVERALL_FIELD_NUMBER: _ClassVar[int]
    MODEL_USED_FIELD_NUMBER: _ClassVar[int]
    grades: _containers.RepeatedCompositeFieldContainer[CriterionGrade]
    overall: float
    model_used: str
    def __init__(self, grades: _Optional[_Iterable[_Union[CriterionGrade, _Mapping]]] = ..., overall: _Optional[float] = ..., model_used: _Optional[str] = ...) -> None: ...
