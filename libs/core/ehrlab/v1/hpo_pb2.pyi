import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
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
    __slots__ = ("name", "metric", "direction", "search_space", "sampler", "pruner", "n_trials", "parallelism", "timeout_seconds", "objective", "max_retries", "heartbeat_timeout_seconds", "enqueue")
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
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENQUEUE_FIELD_NUMBER: _ClassVar[int]
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
    max_retries: int
    heartbeat_timeout_seconds: float
    enqueue: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    def __init__(self, name: _Optional[str] = ..., metric: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., search_space: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., sampler: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., pruner: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., n_trials: _Optional[int] = ..., parallelism: _Optional[int] = ..., timeout_seconds: _Optional[float] = ..., objective: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., max_retries: _Optional[int] = ..., heartbeat_timeout_seconds: _Optional[float] = ..., enqueue: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ...) -> None: ...

class IntermediateValue(_message.Message):
    __slots__ = ("step", "value")
    STEP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    step: int
    value: float
    def __init__(self, step: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class Trial(_message.Message):
    __slots__ = ("number", "state", "params", "value", "intermediate", "experiment_id", "error", "attempt", "retry_of", "started", "finished", "attrs")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    INTERMEDIATE_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RETRY_OF_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    ATTRS_FIELD_NUMBER: _ClassVar[int]
    number: int
    state: TrialState
    params: _struct_pb2.Struct
    value: float
    intermediate: _containers.RepeatedCompositeFieldContainer[IntermediateValue]
    experiment_id: str
    error: str
    attempt: int
    retry_of: int
    started: _timestamp_pb2.Timestamp
    finished: _timestamp_pb2.Timestamp
    attrs: _struct_pb2.Struct
    def __init__(self, number: _Optional[int] = ..., state: _Optional[_Union[TrialState, str]] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., value: _Optional[float] = ..., intermediate: _Optional[_Iterable[_Union[IntermediateValue, _Mapping]]] = ..., experiment_id: _Optional[str] = ..., error: _Optional[str] = ..., attempt: _Optional[int] = ..., retry_of: _Optional[int] = ..., started: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attrs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TrialCounts(_message.Message):
    __slots__ = ("running", "complete", "pruned", "failed", "waiting", "budgeted")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    PRUNED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    BUDGETED_FIELD_NUMBER: _ClassVar[int]
    running: int
    complete: int
    pruned: int
    failed: int
    waiting: int
    budgeted: int
    def __init__(self, running: _Optional[int] = ..., complete: _Optional[int] = ..., pruned: _Optional[int] = ..., failed: _Optional[int] = ..., waiting: _Optional[int] = ..., budgeted: _Optional[int] = ...) -> None: ...

class Study(_message.Message):
    __slots__ = ("name", "metric", "direction", "n_trials", "counts", "best", "search_space", "definition", "finished", "error", "trials")
    NAME_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    N_TRIALS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    BEST_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SPACE_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    name: str
    metric: str
    direction: Direction
    n_trials: int
    counts: TrialCounts
    best: Trial
    search_space: _struct_pb2.Struct
    definition: _struct_pb2.Struct
    finished: bool
    error: str
    trials: _containers.RepeatedCompositeFieldContainer[Trial]
    def __init__(self, name: _Optional[str] = ..., metric: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., n_trials: _Optional[int] = ..., counts: _Optional[_Union[TrialCounts, _Mapping]] = ..., best: _Optional[_Union[Trial, _Mapping]] = ..., search_space: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., definition: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., finished: _Optional[bool] = ..., error: _Optional[str] = ..., trials: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ...) -> None: ...

class AskRequest(_message.Message):
    __slots__ = ("study", "n", "worker")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    study: str
    n: int
    worker: str
    def __init__(self, study: _Optional[str] = ..., n: _Optional[int] = ..., worker: _Optional[str] = ...) -> None: ...

class AskResponse(_message.Message):
    __slots__ = ("trials",)
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    trials: _containers.RepeatedCompositeFieldContainer[Trial]
    def __init__(self, trials: _Optional[_Iterable[_Union[Trial, _Mapping]]] = ...) -> None: ...

class TellRequest(_message.Message):
    __slots__ = ("study", "trial", "state", "value", "error", "retry")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    study: str
    trial: int
    state: TrialState
    value: float
    error: str
    retry: bool
    def __init__(self, study: _Optional[str] = ..., trial: _Optional[int] = ..., state: _Optional[_Union[TrialState, str]] = ..., value: _Optional[float] = ..., error: _Optional[str] = ..., retry: _Optional[bool] = ...) -> None: ...

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

class HeartbeatRequest(_message.Message):
    __slots__ = ("study", "trial")
    STUDY_FIELD_NUMBER: _ClassVar[int]
    TRIAL_FIELD_NUMBER: _ClassVar[int]
    study: str
    trial: int
    def __init__(self, study: _Optional[str] = ..., trial: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStudyRequest(_message.Message):
    __slots__ = ("name", "include_trials")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRIALS_FIELD_NUMBER: _ClassVar[int]
    name: str
    include_trials: bool
    def __init__(self, name: _Optional[str] = ..., include_trials: _Optional[bool] = ...) -> None: ...

class ListStudiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListStudiesResponse(_message.Message):
    __slots__ = ("studies",)
    STUDIES_FIELD_NUMBER: _ClassVar[int]
    studies: _containers.RepeatedCompositeFieldContainer[Study]
    def __init__(self, studies: _Optional[_Iterable[_Union[Study, _Mapping]]] = ...) -> None: ...

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
