import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ehrlab.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExperimentView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPERIMENT_VIEW_UNSPECIFIED: _ClassVar[ExperimentView]
    EXPERIMENT_VIEW_FULL: _ClassVar[ExperimentView]
    EXPERIMENT_VIEW_SUMMARY: _ClassVar[ExperimentView]
EXPERIMENT_VIEW_UNSPECIFIED: ExperimentView
EXPERIMENT_VIEW_FULL: ExperimentView
EXPERIMENT_VIEW_SUMMARY: ExperimentView

class SubmitOptions(_message.Message):
    __slots__ = ("force_kinds", "skip_kinds", "failfast", "max_attempts", "max_parallel", "dry_run")
    FORCE_KINDS_FIELD_NUMBER: _ClassVar[int]
    SKIP_KINDS_FIELD_NUMBER: _ClassVar[int]
    FAILFAST_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    MAX_PARALLEL_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    force_kinds: _containers.RepeatedScalarFieldContainer[str]
    skip_kinds: _containers.RepeatedScalarFieldContainer[str]
    failfast: bool
    max_attempts: int
    max_parallel: int
    dry_run: bool
    def __init__(self, force_kinds: _Optional[_Iterable[str]] = ..., skip_kinds: _Optional[_Iterable[str]] = ..., failfast: _Optional[bool] = ..., max_attempts: _Optional[int] = ..., max_parallel: _Optional[int] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class SubmitExperimentRequest(_message.Message):
    __slots__ = ("request_id", "layers", "options", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    layers: _containers.RepeatedCompositeFieldContainer[_common_pb2.SpecLayer]
    options: SubmitOptions
    labels: _containers.ScalarMap[str, str]
    def __init__(self, request_id: _Optional[str] = ..., layers: _Optional[_Iterable[_Union[_common_pb2.SpecLayer, _Mapping]]] = ..., options: _Optional[_Union[SubmitOptions, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("id", "name", "request_id", "planner", "state", "spec", "options", "labels", "counts", "progress", "error", "times", "cancel_requested", "tasks")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PLANNER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TIMES_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    request_id: str
    planner: str
    state: _common_pb2.ExperimentState
    spec: _struct_pb2.Struct
    options: SubmitOptions
    labels: _containers.ScalarMap[str, str]
    counts: _common_pb2.TaskCounts
    progress: float
    error: str
    times: _common_pb2.Timestamps
    cancel_requested: bool
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., request_id: _Optional[str] = ..., planner: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.ExperimentState, str]] = ..., spec: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., options: _Optional[_Union[SubmitOptions, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., counts: _Optional[_Union[_common_pb2.TaskCounts, _Mapping]] = ..., progress: _Optional[float] = ..., error: _Optional[str] = ..., times: _Optional[_Union[_common_pb2.Timestamps, _Mapping]] = ..., cancel_requested: _Optional[bool] = ..., tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("id", "experiment_id", "name", "kind", "key", "dataset", "params", "inputs", "depends_on", "state", "attempt", "max_attempts", "resources", "timeout_seconds", "forced", "error", "output", "times", "code_version", "labels", "service", "waiting")
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.ArtifactRef
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FORCED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TIMES_FIELD_NUMBER: _ClassVar[int]
    CODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    id: str
    experiment_id: str
    name: str
    kind: str
    key: str
    dataset: str
    params: _struct_pb2.Struct
    inputs: _containers.MessageMap[str, _common_pb2.ArtifactRef]
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    state: _common_pb2.TaskState
    attempt: int
    max_attempts: int
    resources: _common_pb2.Resources
    timeout_seconds: float
    forced: bool
    error: str
    output: _common_pb2.ArtifactRef
    times: _common_pb2.Timestamps
    code_version: str
    labels: _containers.ScalarMap[str, str]
    service: str
    waiting: str
    def __init__(self, id: _Optional[str] = ..., experiment_id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ..., key: _Optional[str] = ..., dataset: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., inputs: _Optional[_Mapping[str, _common_pb2.ArtifactRef]] = ..., depends_on: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., resources: _Optional[_Union[_common_pb2.Resources, _Mapping]] = ..., timeout_seconds: _Optional[float] = ..., forced: _Optional[bool] = ..., error: _Optional[str] = ..., output: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., times: _Optional[_Union[_common_pb2.Timestamps, _Mapping]] = ..., code_version: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., service: _Optional[str] = ..., waiting: _Optional[str] = ...) -> None: ...

class GetExperimentRequest(_message.Message):
    __slots__ = ("id", "view")
    ID_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    id: str
    view: ExperimentView
    def __init__(self, id: _Optional[str] = ..., view: _Optional[_Union[ExperimentView, str]] = ...) -> None: ...

class ListExperimentsRequest(_message.Message):
    __slots__ = ("page", "states", "labels", "name_prefix", "view")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PAGE_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    page: _common_pb2.PageRequest
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.ExperimentState]
    labels: _containers.ScalarMap[str, str]
    name_prefix: str
    view: ExperimentView
    def __init__(self, page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ..., states: _Optional[_Iterable[_Union[_common_pb2.ExperimentState, str]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., name_prefix: _Optional[str] = ..., view: _Optional[_Union[ExperimentView, str]] = ...) -> None: ...

class ListExperimentsResponse(_message.Message):
    __slots__ = ("experiments", "next_page_token")
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    experiments: _containers.RepeatedCompositeFieldContainer[Experiment]
    next_page_token: str
    def __init__(self, experiments: _Optional[_Iterable[_Union[Experiment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchExperimentRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ExperimentEvent(_message.Message):
    __slots__ = ("sequence", "time", "experiment", "task", "snapshot")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    experiment: Experiment
    task: Task
    snapshot: bool
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., experiment: _Optional[_Union[Experiment, _Mapping]] = ..., task: _Optional[_Union[Task, _Mapping]] = ..., snapshot: _Optional[bool] = ...) -> None: ...

class CancelExperimentRequest(_message.Message):
    __slots__ = ("id", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("experiment_id", "page", "states", "kind")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    page: _common_pb2.PageRequest
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.TaskState]
    kind: str
    def __init__(self, experiment_id: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ..., states: _Optional[_Iterable[_Union[_common_pb2.TaskState, str]]] = ..., kind: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RetryTaskRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListTaskKindsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TaskKindInfo(_message.Message):
    __slots__ = ("name", "service", "code_version", "inputs", "params_schema", "resources", "timeout_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    service: str
    code_version: str
    inputs: _containers.RepeatedScalarFieldContainer[str]
    params_schema: _struct_pb2.Struct
    resources: _common_pb2.Resources
    timeout_seconds: float
    def __init__(self, name: _Optional[str] = ..., service: _Optional[str] = ..., code_version: _Optional[str] = ..., inputs: _Optional[_Iterable[str]] = ..., params_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., resources: _Optional[_Union[_common_pb2.Resources, _Mapping]] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class ListTaskKindsResponse(_message.Message):
    __slots__ = ("kinds", "planners")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    PLANNERS_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedCompositeFieldContainer[TaskKindInfo]
    planners: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kinds: _Optional[_Iterable[_Union[TaskKindInfo, _Mapping]]] = ..., planners: _Optional[_Iterable[str]] = ...) -> None: ...
