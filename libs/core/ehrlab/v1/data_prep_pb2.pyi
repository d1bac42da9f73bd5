import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListDatasetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DatasetInfo(_message.Message):
    __slots__ = ("id", "uri", "format", "name", "kind")
    ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    id: str
    uri: str
    format: str
    name: str
    kind: str
    def __init__(self, id: _Optional[str] = ..., uri: _Optional[str] = ..., format: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetInfo]
    def __init__(self, datasets: _Optional[_Iterable[_Union[DatasetInfo, _Mapping]]] = ...) -> None: ...

class DescribeDatasetRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DatasetDescription(_message.Message):
    __slots__ = ("dataset", "patients", "codes", "events", "time_start", "time_end", "shards", "metadata")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PATIENTS_FIELD_NUMBER: _ClassVar[int]
    CODES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    TIME_START_FIELD_NUMBER: _ClassVar[int]
    TIME_END_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    dataset: DatasetInfo
    patients: int
    codes: int
    events: int
    time_start: _timestamp_pb2.Timestamp
    time_end: _timestamp_pb2.Timestamp
    shards: int
    metadata: _struct_pb2.Struct
    def __init__(self, dataset: _Optional[_Union[DatasetInfo, _Mapping]] = ..., patients: _Optional[int] = ..., codes: _Optional[int] = ..., events: _Optional[int] = ..., time_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., shards: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class PreviewCohortRequest(_message.Message):
    __slots__ = ("dataset_id", "limit", "subject_ids")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    limit: int
    subject_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, dataset_id: _Optional[str] = ..., limit: _Optional[int] = ..., subject_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class PatientEvent(_message.Message):
    __slots__ = ("time", "code", "numeric_value")
    TIME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    NUMERIC_VALUE_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    code: str
    numeric_value: float
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., code: _Optional[str] = ..., numeric_value: _Optional[float] = ...) -> None: ...

class PatientPreview(_message.Message):
    __slots__ = ("subject_id", "events", "summary")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    subject_id: int
    events: _containers.RepeatedCompositeFieldContainer[PatientEvent]
    summary: _struct_pb2.Struct
    def __init__(self, subject_id: _Optional[int] = ..., events: _Optional[_Iterable[_Union[PatientEvent, _Mapping]]] = ..., summary: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class PreviewCohortResponse(_message.Message):
    __slots__ = ("patients",)
    PATIENTS_FIELD_NUMBER: _ClassVar[int]
    patients: _containers.RepeatedCompositeFieldContainer[PatientPreview]
    def __init__(self, patients: _Optional[_Iterable[_Union[PatientPreview, _Mapping]]] = ...) -> None: ...
