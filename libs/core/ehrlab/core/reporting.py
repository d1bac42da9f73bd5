"""A running task's reporter over gRPC: metrics and progress to the result-store, intermediate
objective values to the hpo-controller when the task is an HPO trial.

Metrics are buffered and sent in batches on the ReportMetrics client stream. Reporting never fails a
task: when the result-store is unreachable the reporter retries briefly, then logs and drops the
batch (the task's outputs and results are what must not be lost, and those travel another way).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import grpc
from google.protobuf import timestamp_pb2

from ehrlab.core.channels import open_channel
from ehrlab.core.runner import TaskSpec
from ehrlab.core.settings import Settings
from ehrlab.v1 import common_pb2, hpo_pb2, hpo_pb2_grpc, result_store_pb2, result_store_pb2_grpc

log = logging.getLogger("ehrlab.reporting")

HPO_STUDY_LABEL = "ehrlab.io/hpo-study"
HPO_TRIAL_LABEL = "ehrlab.io/hpo-trial"
_BATCH = 1000


class GrpcReporter:
    def __init__(self, spec: TaskSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        self._channels: dict[str, grpc.Channel] = {}
        self._buffer: list[result_store_pb2.Metric] = []

    def _channel(self, service: str) -> grpc.Channel:
        if service not in self._channels:
            self._channels[service] = open_channel(self.settings.address(service), token=self.settings.token,
                                                   ca=self.settings.tls.ca)
        return self._channels[service]

    def metrics(self, step: int, values: Mapping[str, float], labels: Mapping[str, str]) -> None:
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        for name, value in values.items():
            self._buffer.append(result_store_pb2.Metric(name=name, value=value, step=step, time=now, labels=labels))
        if len(self._buffer) >= _BATCH:
            self.flush()

    def progress(self, fraction: float, message: str) -> None:
        status = result_store_pb2.TaskStatus(
            experiment_id=self.spec.experiment_id, task_id=self.spec.task_id, task_name=self.spec.name,
            kind=self.spec.kind, state=common_pb2.TASK_STATE_RUNNING, attempt=self.spec.attempt, message=message,
            progress=fraction, sequence=time.time_ns())
        self._send(lambda: result_store_pb2_grpc.ResultStoreStub(self._channel("result-store")).ReportStatus(
            result_store_pb2.ReportStatusRequest(statuses=[status]), timeout=10), "progress")

    def intermediate(self, step: int, value: float) -> bool:
        study = self.spec.labels.get(HPO_STUDY_LABEL)
        trial = self.spec.labels.get(HPO_TRIAL_LABEL)
        if not study or trial is None:
            return False
        stub = hpo_pb2_grpc.HpoControllerStub(self._channel("hpo-controller"))
        request = hpo_pb2.ReportIntermediateRequest(study=study, trial=int(trial), step=step, value=value)
        deadline = time.monotonic() + 60  # an hpo-controller restarting must not fail the trial's attempt
        while True:
            try:
                return stub.ReportIntermediate(request, timeout=30).prune
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    return True  # the study no longer runs this trial: stop it
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) \
                        or time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        message = result_store_pb2.MetricBatch(experiment_id=self.spec.experiment_id, task_id=self.spec.task_id,
                                               kind=self.spec.kind, attempt=self.spec.attempt, metrics=batch)
        self._send(lambda: result_store_pb2_grpc.ResultStoreStub(self._channel("result-store")).ReportMetrics(
            iter([message]), timeout=30), f"{len(batch)} metric points")

    def _send(self, call: object, what: str) -> None:
        for delay in (0.2, 1.0, 3.0, None):
            try:
                call()  # type: ignore[operator]
                return
            except grpc.RpcError as exc:
                if delay is None:
                    log.warning("could not report %s to the result-store (%s): dropped", what, exc.code().name)
                    return
                time.sleep(delay)

    def close(self) -> None:
        self.flush()
        for channel in self._channels.values():
            channel.close()
