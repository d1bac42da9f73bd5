"""gRPC servicer of the trainer service: the model catalog, generic over the task-kind registry.

Every installed kind whose service is "trainer" is a model kind, whichever library declares it, so a
new library's training kinds appear here without touching this service.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from ehrlab.core.config import validate
from ehrlab.core.errors import SpecError
from ehrlab.core.kinds import TaskKind, get_kind, registry
from ehrlab.core.wire import from_struct, to_struct
from ehrlab.v1 import common_pb2, trainer_pb2, trainer_pb2_grpc

SERVICE = "trainer"
log = logging.getLogger("ehrlab.trainer")


def _code_version(kind: TaskKind) -> str:
    """The kind's code version; empty (and logged) when its source cannot be found, so one broken
    plugin does not take the whole catalog down."""
    try:
        return kind.code_version
    except ModuleNotFoundError as exc:
        log.warning("kind %s: no code version (%s)", kind.name, exc)
        return ""


def model_kind(kind: TaskKind) -> trainer_pb2.ModelKind:
    resources = kind.resources
    return trainer_pb2.ModelKind(
        kind=kind.name, description=kind.description, gpu=resources.gpu > 0, metrics=list(kind.metrics),
        params_schema=to_struct(kind.params.model_json_schema()),
        resources=common_pb2.Resources(cpu=resources.cpu, memory_bytes=resources.memory, gpu=resources.gpu,
                                       node_pool=resources.node_pool),
        inputs=list(kind.inputs), optional_inputs=list(kind.optional_inputs), code_version=_code_version(kind))


def trainer_kinds() -> list[TaskKind]:
    return sorted((k for k in registry().values() if k.service == SERVICE), key=lambda k: k.name)


def validate_train_spec(kind_name: str, params: dict[str, Any]) -> trainer_pb2.ValidateTrainSpecResponse:
    """Every problem as a FieldError with its key path; `normalized` holds the params with defaults filled in."""
    def invalid(*errors: tuple[str, str]) -> trainer_pb2.ValidateTrainSpecResponse:
        return trainer_pb2.ValidateTrainSpecResponse(
            valid=False, errors=[trainer_pb2.FieldError(path=path, message=message) for path, message in errors])

    if not kind_name:
        return invalid(("kind", "required: the name of a trainer kind"))
    try:
        kind = get_kind(kind_name)
    except SpecError as exc:
        return invalid(("kind", exc.message))
    if kind.service != SERVICE:
        return invalid(("kind", f"kind {kind_name!r} runs on the {kind.service} service, not the trainer"))
    try:
        validated = validate(kind.params, params)
    except SpecError as exc:
        problems = getattr(exc, "problems", None) or [exc]
        return invalid(*(("params" + (f".{p.path}" if p.path else ""), p.message) for p in problems))
    return trainer_pb2.ValidateTrainSpecResponse(valid=True, normalized=to_struct(validated.model_dump(mode="json")))


class TrainerServicer(trainer_pb2_grpc.TrainerServicer):
    """ListModelKinds and ValidateTrainSpec over the kinds registered through `ehrlab.kinds`."""

    def ListModelKinds(self, request: trainer_pb2.ListModelKindsRequest,
                       context: grpc.ServicerContext) -> trainer_pb2.ListModelKindsResponse:
        return trainer_pb2.ListModelKindsResponse(kinds=[model_kind(kind) for kind in trainer_kinds()])

    def ValidateTrainSpec(self, request: trainer_pb2.ValidateTrainSpecRequest,
                          context: grpc.ServicerContext) -> trainer_pb2.ValidateTrainSpecResponse:
        return validate_train_spec(request.kind, from_struct(request.params))
