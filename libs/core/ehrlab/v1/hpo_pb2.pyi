from google.protobuf import struct_pb2 as _struct_pb2
from ehrlab.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_MAXIMIZE: _ClassVar[Direction]
    DIRECTION_MINIMIZE: _ClassVar[Direction]

class TrialState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIAL_STATE_UNSPECIFIED: _ClassVar[TrialState]
    TRIAL_STATE_RUNNING: _ClassVar[TrialState]
    TRIAL_STATE_COMPLETE: _ClassVar[TrialState]
    TRIAL_STATE_PRUNED: _ClassVar[TrialState]
    TRIAL_STATE_FAILED: _ClassVar[TrialState]
    TRIAL_STATE_WAITING: _ClassVar[TrialState]
DIRECTION_UNSPECIFIED: Direction
DIRECTION_MAXIMIZE: Direction
DIRECTION_MINIMIZE: Direction
TRIAL_STATE_UNSPECIFIED: TrialState
TRIAL_STATE_RUNNING: TrialState
TRIAL_STATE_COMPLETE: TrialState
TRIAL_STATE_PRUNED: TrialState
TRIAL_STATE_FAILED: TrialState
TRIAL_STATE_WAITING: TrialState

class CreateStudyRequest(_message.Message):
    __slots__ = ("name", "metric", "direction", "search_space", "sampler", "pruner", "n_trials", "parallelism", "timeout_seconds", "objective")
    NAME_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    PRUNER_FIELD_NUMBER: _ClassVar[int]
    N_TRIALS_FIELD_NUMBER: _ClassVar[int]
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    name: str
    metric: str
    direction: Direction
    search_space: _struct_pb2.Struct
    sampler: _struct_pb2.Struct
    pruner: _struct_pb2.Struct
    n_trials: int
    parallelism: int
    timeout_seconds: float
    objective: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., metric: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., search_space: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., sampler: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., pruner: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., n_trials: _Optional[int] = ..., parallelism: _Optional[int] = ..., timeout_seconds: _Optional[float] = ..., objective: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Trial(_message.Message):
    __slots__ = ("number", "state", "params", "value", "intermediate", "task_id", "error")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    INTERMEDIATE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    number: int
    state: TrialState
    params: _struct_pb2.Struct
    value: float
    intermediate: _containers.RepeatedScalarFieldContainer[float]
    task_id: str
    error: str
    def __init__(self, number: _Optional[int] = ..., state: _Optional[_Union[TrialState, str]] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., value: _Optional[float] = ..., intermediate: _Optional[_Iterable[float]] = ..., task_id: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class Study(_message.Message):
    __slots__ = ("name", "metric", "direction", "n_trials", "complete", "pruned", "failed", "running", "best", "search_space")
    NAME_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    N_TRIALS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    PRUNED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    BEST_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    name: str
    metric: str
    direction: Direction
    n_trials: int
    complete: int
    pruned: int
    failed: int
    running: int
    best: Trial
    search_space: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., metric: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., n_trials: _Optional[int] = ..., complete: _Optional[int] = ..., pruned: _Optional[int] = ..., failed: _Optional[int] = ..., running: _Optional[int] = ..., best: _Optional[_Union[Trial, _Mapping]] = ..., search_space: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class AskRequest(_message.Message):
    __slots__ = ("study", "n")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    study: str
    n: int
    def __init__(self, study: _Optional[str] = ..., n: _Optional[int] = ...) -> None: ...

class AskResponse(_message.Message):
    __slots__ = ("trials",)
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    trials: _containers.RepeatedCompositeFieldContainer[Trial]
    def __init__(self, trials: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ...) -> None: ...

class TellRequest(_message.Message):
    __slots__ = ("study", "trial", "state", "value", "error")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    study: str
    trial: int
    state: TrialState
    value: float
    error: str
    def __init__(self, study: _Optional[str] = ..., trial: _Optional[int] = ..., state: _Optional[_Union[TrialState, str]] = ..., value: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class TellResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReportIntermediateRequest(_message.Message):
    __slots__ = ("study", "trial", "step", "value")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    study: str
    trial: int
    step: int
    value: float
    def __init__(self, study: _Optional[str] = ..., trial: _Optional[int] = ..., step: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class ReportIntermediateResponse(_message.Message):
    __slots__ = ("prune",)
    PRUNE_FIELD_NUMBER: _ClassVar[int]
    prune: bool
    def __init__(self, prune: _Optional[bool] = ...) -> None: ...

class GetStudyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class TopKRequest(_message.Message):
    __slots__ = ("study", "k")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    study: str
    k: int
    def __init__(self, study: _Optional[str] = ..., k: _Optional[int] = ...) -> None: ...

class TopKResponse(_message.Message):
    __slots__ = ("trials",)
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    trials: _containers.RepeatedCompositeFieldContainer[Trial]
    def __init__(self, trials: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ...) -> None: ...
