from ehrlab.v1 import common_pb2 as _common_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListModelKindsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelKind(_message.Message):
    __slots__ = ("kind", "description", "gpu", "metrics", "params_schema", "resources", "inputs", "optional_inputs", "code_version")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    GPU_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_INPUTS_FIELD_NUMBER: _ClassVar[int]
    CODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    kind: str
    description: str
    gpu: bool
    metrics: _containers.RepeatedScalarFieldContainer[str]
    params_schema: _struct_pb2.Struct
    resources: _common_pb2.Resources
    inputs: _containers.RepeatedScalarFieldContainer[str]
    optional_inputs: _containers.RepeatedScalarFieldContainer[str]
    code_version: str
    def __init__(self, kind: _Optional[str] = ..., description: _Optional[str] = ..., gpu: _Optional[bool] = ..., metrics: _Optional[_Iterable[str]] = ..., params_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., resources: _Optional[_Union[_common_pb2.Resources, _Mapping]] = ..., inputs: _Optional[_Iterable[str]] = ..., optional_inputs: _Optional[_Iterable[str]] = ..., code_version: _Optional[str] = ...) -> None: ...

class ListModelKindsResponse(_message.Message):
    __slots__ = ("kinds",)
    KINDS_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedCompositeFieldContainer[ModelKind]
    def __init__(self, kinds: _Optional[_Iterable[_Union[ModelKind, _Mapping]]] = ...) -> None: ...

class ValidateTrainSpecRequest(_message.Message):
    __slots__ = ("kind", "params")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    params: _struct_pb2.Struct
    def __init__(self, kind: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class FieldError(_message.Message):
    __slots__ = ("path", "message")
    PATH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    path: str
    message: str
    def __init__(self, path: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ValidateTrainSpecResponse(_message.Message):
    __slots__ = ("valid", "errors", "normalized")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    errors: _containers.RepeatedCompositeFieldContainer[FieldError]
    normalized: _struct_pb2.Struct
    def __init__(self, valid: _Optional[bool] = ..., errors: _Optional[_Iterable[_Union[FieldError, _Mapping]]] = ..., normalized: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
