"""Engine records <-> ehrlab.v1 messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ehrlab.core.wire import to_struct as struct
from ehrlab.core.wire import to_timestamp as timestamp
from ehrlab.engine.model import RUNNING, TASK_STATE_NAMES, ExperimentRecord, TaskRecord
from ehrlab.v1 import common_pb2, controller_pb2


def times(created: datetime | None, started: datetime | None, finished: datetime | None) -> common_pb2.Timestamps:
    return common_pb2.Timestamps(created=timestamp(created), started=timestamp(started), finished=timestamp(finished))


def counts(by_name: dict[str, int]) -> common_pb2.TaskCounts:
    return common_pb2.TaskCounts(total=sum(by_name.values()), **{k: v for k, v in by_name.items()})


def resources(res: Any) -> common_pb2.Resources:
    return common_pb2.Resources(cpu=res.cpu, memory_bytes=res.memory, gpu=res.gpu, node_pool=res.node_pool)


def task(record: TaskRecord, store_uri: str = "") -> controller_pb2.Task:
    inputs = {}
    for name, ref in record.inputs.items():
        if "uri" in ref:
            inputs[name] = common_pb2.ArtifactRef(uri=ref["uri"], digest=ref.get("digest", ""))
        else:
            inputs[name] = common_pb2.ArtifactRef(dataset=ref["dataset"], kind=ref["kind"], key=ref["key"],
                                                  digest=ref.get("digest", ""))
    output = None
    if record.output_digest:
        uri = f"{store_uri.rstrip('/')}/{record.prefix}" if store_uri else record.prefix
        output = common_pb2.ArtifactRef(uri=uri, digest=record.output_digest, dataset=record.dataset,
                                        kind=record.kind, key=record.key, size_bytes=record.output_size or 0)
    return controller_pb2.Task(
        id=record.id, experiment_id=record.experiment_id, name=record.name, kind=record.kind, key=record.key,
        dataset=record.dataset, params=struct(record.params), inputs=inputs, depends_on=record.depends_on,
        state=record.state, attempt=record.launches, max_attempts=record.max_attempts,
        resources=resources(record.resources), timeout_seconds=record.timeout_s, forced=record.forced,
        error=record.error, output=output, code_version=record.code_version, labels=record.labels,
        service=record.service, times=times(record.created_at, record.started_at, record.finished_at),
        waiting=record.waiting if record.state == RUNNING else "")


def options(values: dict[str, Any]) -> controller_pb2.SubmitOptions:
    return controller_pb2.SubmitOptions(
        force_kinds=values.get("force", []), skip_kinds=values.get("skip", []), failfast=values.get("failfast", False),
        max_attempts=values.get("max_attempts", 0), max_parallel=values.get("max_parallel", 0))


def experiment(record: ExperimentRecord, counts_by_name: dict[str, int] | None = None, *,
               with_spec: bool = True) -> controller_pb2.Experiment:
    by_name = record.counts_dict() if counts_by_name is None else counts_by_name
    total = sum(by_name.values())
    finished = sum(by_name.get(TASK_STATE_NAMES[s], 0) for s in (4, 5, 6, 7, 8))
    return controller_pb2.Experiment(
        id=record.id, name=record.name, request_id=record.request_id, planner=record.planner, state=record.state,
        spec=struct(record.spec) if with_spec else None, options=options(record.options), labels=record.labels,
        counts=counts(by_name),
        progress=finished / total if total else 0.0, error=record.error,
        times=times(record.created_at, record.started_at, record.finished_at),
        cancel_requested=record.cancel_requested)
