from google.protobuf import struct_pb2 as _struct_pb2
from ehrlab.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Sex(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEX_UNSPECIFIED: _ClassVar[Sex]
    SEX_FEMALE: _ClassVar[Sex]
    SEX_MALE: _ClassVar[Sex]
SEX_UNSPECIFIED: Sex
SEX_FEMALE: Sex
SEX_MALE: Sex

class Demographics(_message.Message):
    __slots__ = ("age", "sex")
    AGE_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    age: float
    sex: Sex
    def __init__(self, age: _Optional[float] = ..., sex: _Optional[_Union[Sex, str]] = ...) -> None: ...

class Visit(_message.Message):
    __slots__ = ("codes",)
    CODES_FIELD_NUMBER: _ClassVar[int]
    codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, codes: _Optional[_Iterable[str]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("model", "demographics", "count", "seed", "history", "sampling")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DEMOGRAPHICS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    model: str
    demographics: _containers.RepeatedCompositeFieldContainer[Demographics]
    count: int
    seed: int
    history: _containers.RepeatedCompositeFieldContainer[Visit]
    sampling: _struct_pb2.Struct
    def __init__(self, model: _Optional[str] = ..., demographics: _Optional[_Iterable[_Union[Demographics, _Mapping]]] = ..., count: _Optional[int] = ..., seed: _Optional[int] = ..., history: _Optional[_Iterable[_Union[Visit, _Mapping]]] = ..., sampling: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class SyntheticPatient(_message.Message):
    __slots__ = ("index", "demographics", "visits")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DEMOGRAPHICS_FIELD_NUMBER: _ClassVar[int]
    VISITS_FIELD_NUMBER: _ClassVar[int]
    index: int
    demographics: Demographics
    visits: _containers.RepeatedCompositeFieldContainer[Visit]
    def __init__(self, index: _Optional[int] = ..., demographics: _Optional[_Union[Demographics, _Mapping]] = ..., visits: _Optional[_Iterable[_Union[Visit, _Mapping]]] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("model", "heldout", "n_synthetic", "seed", "cohort", "sampling")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_FIELD_NUMBER: _ClassVar[int]
    N_SYNTHETIC_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    model: str
    heldout: _common_pb2.ArtifactRef
    n_synthetic: int
    seed: int
    cohort: _common_pb2.ArtifactRef
    sampling: _struct_pb2.Struct
    def __init__(self, model: _Optional[str] = ..., heldout: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., n_synthetic: _Optional[int] = ..., seed: _Optional[int] = ..., cohort: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., sampling: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: _struct_pb2.Struct
    def __init__(self, report: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class DescribeModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ModelDescription(_message.Message):
    __slots__ = ("model", "config", "training_data", "parameters", "metrics")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATA_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    model: str
    config: _struct_pb2.Struct
    training_data: _struct_pb2.Struct
    parameters: int
    metrics: _struct_pb2.Struct
    def __init__(self, model: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., training_data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., parameters: _Optional[int] = ..., metrics: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
