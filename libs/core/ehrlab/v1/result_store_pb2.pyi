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

class QueryTable(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUERY_TABLE_UNSPECIFIED: _ClassVar[QueryTable]
    QUERY_TABLE_RESULTS: _ClassVar[QueryTable]
    QUERY_TABLE_METRICS: _ClassVar[QueryTable]
QUERY_TABLE_UNSPECIFIED: QueryTable
QUERY_TABLE_RESULTS: QueryTable
QUERY_TABLE_METRICS: QueryTable

class TaskStatus(_message.Message):
    __slots__ = ("experiment_id", "task_id", "task_name", "kind", "state", "attempt", "message", "progress", "sequence", "time", "cache_hit", "duration_seconds")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    task_id: str
    task_name: str
    kind: str
    state: _common_pb2.TaskState
    attempt: int
    message: str
    progress: float
    sequence: int
    time: _timestamp_pb2.Timestamp
    cache_hit: bool
    duration_seconds: float
    def __init__(self, experiment_id: _Optional[str] = ..., task_id: _Optional[str] = ..., task_name: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., attempt: _Optional[int] = ..., message: _Optional[str] = ..., progress: _Optional[float] = ..., sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cache_hit: _Optional[bool] = ..., duration_seconds: _Optional[float] = ...) -> None: ...

class ReportStatusRequest(_message.Message):
    __slots__ = ("statuses",)
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedCompositeFieldContainer[TaskStatus]
    def __init__(self, statuses: _Optional[_Iterable[_Union[TaskStatus, _Mapping]]] = ...) -> None: ...

class ReportStatusResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ("name", "value", "step", "time", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    step: int
    time: _timestamp_pb2.Timestamp
    labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., step: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class MetricBatch(_message.Message):
    __slots__ = ("experiment_id", "task_id", "kind", "attempt", "metrics")
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    task_id: str
    kind: str
    attempt: int
    metrics: _containers.RepeatedCompositeFieldContainer[Metric]
    def __init__(self, experiment_id: _Optional[str] = ..., task_id: _Optional[str] = ..., kind: _Optional[str] = ..., attempt: _Optional[int] = ..., metrics: _Optional[_Iterable[_Union[Metric, _Mapping]]] = ...) -> None: ...

class ReportMetricsResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...

class TaskResults(_message.Message):
    __slots__ = ("experiment_id", "task_id", "task_name", "kind", "labels", "rows", "cache_hit")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    task_id: str
    task_name: str
    kind: str
    labels: _containers.ScalarMap[str, str]
    rows: _containers.RepeatedCompositeFieldContainer[_common_pb2.ResultRow]
    cache_hit: bool
    def __init__(self, experiment_id: _Optional[str] = ..., task_id: _Optional[str] = ..., task_name: _Optional[str] = ..., kind: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., rows: _Optional[_Iterable[_Union[_common_pb2.ResultRow, _Mapping]]] = ..., cache_hit: _Optional[bool] = ...) -> None: ...

class PutResultsRequest(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[TaskResults]
    def __init__(self, tasks: _Optional[_Iterable[_Union[TaskResults, _Mapping]]] = ...) -> None: ...

class PutResultsResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("table", "experiment_id", "kind", "task_id", "labels", "metric_name", "page")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TABLE_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    table: QueryTable
    experiment_id: str
    kind: str
    task_id: str
    labels: _containers.ScalarMap[str, str]
    metric_name: str
    page: _common_pb2.PageRequest
    def __init__(self, table: _Optional[_Union[QueryTable, str]] = ..., experiment_id: _Optional[str] = ..., kind: _Optional[str] = ..., task_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., metric_name: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class QueryRow(_message.Message):
    __slots__ = ("experiment_id", "task_id", "task_name", "kind", "labels", "values", "time")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    task_id: str
    task_name: str
    kind: str
    labels: _containers.ScalarMap[str, str]
    values: _struct_pb2.Struct
    time: _timestamp_pb2.Timestamp
    def __init__(self, experiment_id: _Optional[str] = ..., task_id: _Optional[str] = ..., task_name: _Optional[str] = ..., kind: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., values: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("rows", "next_page_token")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[QueryRow]
    next_page_token: str
    def __init__(self, rows: _Optional[_Iterable[_Union[QueryRow, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ProgressRequest(_message.Message):
    __slots__ = ("experiment_id",)
    EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    experiment_id: str
    def __init__(self, experiment_id: _Optional[str] = ...) -> None: ...

class ProgressResponse(_message.Message):
    __slots__ = ("counts", "ratio", "last_update", "recent")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_FIELD_NUMBER: _ClassVar[int]
    RECENT_FIELD_NUMBER: _ClassVar[int]
    counts: _common_pb2.TaskCounts
    ratio: float
    last_update: _timestamp_pb2.Timestamp
    recent: _containers.RepeatedCompositeFieldContainer[TaskStatus]
    def __init__(self, counts: _Optional[_Union[_common_pb2.TaskCounts, _Mapping]] = ..., ratio: _Optional[float] = ..., last_update: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recent: _Optional[_Iterable[_Union[TaskStatus, _Mapping]]] = ...) -> None: ...

class ArtifactRecord(_message.Message):
    __slots__ = ("artifact", "task_id", "files")
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    artifact: _common_pb2.ArtifactRef
    task_id: str
    files: _containers.RepeatedCompositeFieldContainer[_common_pb2.ArtifactFile]
    def __init__(self, artifact: _Optional[_Union[_common_pb2.ArtifactRef, _Mapping]] = ..., task_id: _Optional[str] = ..., files: _Optional[_Iterable[_Union[_common_pb2.ArtifactFile, _Mapping]]] = ...) -> None: ...

class RegisterArtifactsRequest(_message.Message):
    __slots__ = ("artifacts",)
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[ArtifactRecord]
    def __init__(self, artifacts: _Optional[_Iterable[_Union[ArtifactRecord, _Mapping]]] = ...) -> None: ...

class RegisterArtifactsResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...

class LookupArtifactRequest(_message.Message):
    __slots__ = ("key", "dataset", "kind", "page")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    key: str
    dataset: str
    kind: str
    page: _common_pb2.PageRequest
    def __init__(self, key: _Optional[str] = ..., dataset: _Optional[str] = ..., kind: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class LookupArtifactResponse(_message.Message):
    __slots__ = ("artifacts", "next_page_token")
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[_common_pb2.ArtifactRef]
    next_page_token: str
    def __init__(self, artifacts: _Optional[_Iterable[_Union[_common_pb2.ArtifactRef, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
