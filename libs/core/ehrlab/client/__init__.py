"""The Python client of ehrlab: submit experiments, watch them, read their results.

    from ehrlab.client import Client

    client = Client.connect()                      # EHRLAB_CONTROLLER_ADDR, or the embedded stack
    exp = client.submit("examples/pipeline/spec.yaml", labels={"owner": "me"})
    final = client.wait(exp.id)                    # follows WatchExperiment, reconnecting if needed
    rows = client.results(exp.id, kind="estimate_effects")

Errors come back as the platform's exceptions (SpecError, NotFoundError, …) with the server's
one-line message, so scripts can catch what they expect.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc

from ehrlab.core.channels import open_channel
from ehrlab.core.config import Layer, load_layer
from ehrlab.core.errors import (
    AccessDeniedError,
    ConflictError,
    EhrlabError,
    FailedPreconditionError,
    NotFoundError,
    SpecError,
    UnavailableError,
)
from ehrlab.core.settings import SERVICE_PORTS, load_settings
from ehrlab.core.wire import from_struct, to_struct
from ehrlab.v1 import (
    common_pb2,
    controller_pb2,
    controller_pb2_grpc,
    data_prep_pb2_grpc,
    ehr_generator_pb2_grpc,
    grader_pb2_grpc,
    hpo_pb2_grpc,
    result_store_pb2,
    result_store_pb2_grpc,
    trainer_pb2_grpc,
)

FINISHED = (common_pb2.EXPERIMENT_STATE_SUCCEEDED, common_pb2.EXPERIMENT_STATE_FAILED,
            common_pb2.EXPERIMENT_STATE_CANCELLED)
_STUBS = {
    "controller": controller_pb2_grpc.ControllerStub,
    "result-store": result_store_pb2_grpc.ResultStoreStub,
    "data-prep": data_prep_pb2_grpc.DataPrepStub,
    "trainer": trainer_pb2_grpc.TrainerStub,
    "hpo-controller": hpo_pb2_grpc.HpoControllerStub,
    "ehr-generator": ehr_generator_pb2_grpc.EhrGeneratorStub,
    "grader": grader_pb2_grpc.GraderStub,
}
_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT: SpecError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: ConflictError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: UnavailableError,
    grpc.StatusCode.PERMISSION_DENIED: AccessDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: AccessDeniedError,
}
SpecInput = str | Path | Mapping[str, Any]


@contextmanager
def rpc_errors(what: str) -> Iterator[None]:
    """Turns gRPC errors into the platform's exceptions, with the server's message."""
    try:
        yield
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details() or ""
        error = _ERRORS.get(code, EhrlabError)
        if error is SpecError:
            raise _spec_error(exc, details) from None
        if error is UnavailableError:
            raise UnavailableError(f"{what}: service unavailable ({details or code.name})") from None
        raise error(details or f"{what}: {code.name}") from None


def _spec_error(exc: grpc.RpcError, details: str) -> SpecError:
    """The server's SpecError again, with the field path and source from its trailing metadata."""
    trailers = dict(exc.trailing_metadata() or ())
    path, source = trailers.get("ehrlab-field", ""), trailers.get("ehrlab-source", "")
    prefix = ": ".join(part for part in (source, path) if part)
    message = details[len(prefix) + 2:] if prefix and details.startswith(prefix + ": ") else details
    return SpecError(message, path=path, source=source)


def embedded_addresses(home: str | Path | None = None) -> dict[str, str]:
    """Addresses of a stack started by `ehrlab up` in `home` (default: $EHRLAB_HOME or ./.ehrlab)."""
    path = Path(home or os.environ.get("EHRLAB_HOME", ".ehrlab")) / "stack.json"
    try:
        state = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {name: f"127.0.0.1:{svc['grpc']}" for name, svc in state.get("services", {}).items()}


def _layers(spec: SpecInput | Sequence[SpecInput]) -> list[Layer]:
    items = spec if isinstance(spec, (list, tuple)) else [spec]
    layers = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            layers.append(Layer(f"spec {i + 1}", dict(item)))
        else:
            layers.append(load_layer(item))
    return layers


class Client:
    def __init__(self, addresses: Mapping[str, str], *, token: str = "", tls: bool = False, ca: str = "") -> None:
        self.addresses = dict(addresses)
        self.token, self.tls, self.ca = token, tls, ca
        self._channels: dict[str, grpc.Channel] = {}

    @classmethod
    def connect(cls, controller: str | None = None, *, home: str | Path | None = None, token: str | None = None,
                tls: bool | None = None, ca: str | None = None) -> Client:
        """Addresses from: the argument, EHRLAB_<SERVICE>_ADDR / the settings file, an embedded stack, defaults."""
        settings = load_settings()
        addresses = {name: settings.address(name) for name in SERVICE_PORTS}
        configured = {name for name in SERVICE_PORTS
                      if os.environ.get(f"EHRLAB_{name.upper().replace('-', '_')}_ADDR") or name in settings.addresses}
        for name, address in embedded_addresses(home).items():
            if name not in configured:
                addresses[name] = address
        if controller:
            addresses["controller"] = controller
        return cls(addresses, token=settings.token if token is None else token,
                   tls=bool(os.environ.get("EHRLAB_TLS")) if tls is None else tls,
                   ca=settings.tls.ca if ca is None else ca)

    def channel(self, service: str) -> grpc.Channel:
        if service not in self._channels:
            if service not in self.addresses:
                raise EhrlabError(f"no address for service {service!r}")
            self._channels[service] = open_channel(self.addresses[service], token=self.token, tls=self.tls, ca=self.ca)
        return self._channels[service]

    def stub(self, service: str) -> Any:
        """The generated stub of any ehrlab service ('controller', 'grader', …)."""
        return _STUBS[service](self.channel(service))

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def controller(self) -> controller_pb2_grpc.ControllerStub:
        return self.stub("controller")

    # --- experiments -----------------------------------------------------------------------------

    def submit(self, spec: SpecInput | Sequence[SpecInput], *, request_id: str | None = None,
               force: Sequence[str] = (), skip: Sequence[str] = (), failfast: bool = False, max_attempts: int = 0,
               max_parallel: int = 0, labels: Mapping[str, str] | None = None,
               dry_run: bool = False) -> controller_pb2.Experiment:
        """Submits spec layers (files or dicts, merged in order: base -> dataset -> experiment).

        The same `request_id` always returns the same experiment, so a retried submit never runs twice.
        """
        layers = [common_pb2.SpecLayer(source=layer.source, content=to_struct(layer.content))
                  for layer in _layers(spec)]
        request = controller_pb2.SubmitExperimentRequest(
            request_id=request_id or uuid.uuid4().hex, layers=layers, labels=dict(labels or {}),
            options=controller_pb2.SubmitOptions(force_kinds=list(force), skip_kinds=list(skip), failfast=failfast,
                                                 max_attempts=max_attempts, max_parallel=max_parallel,
                                                 dry_run=dry_run))
        with rpc_errors("submit"):
            return self.controller.SubmitExperiment(request, timeout=300)

    def get_experiment(self, experiment: str, *, with_spec: bool = True) -> controller_pb2.Experiment:
        """An experiment by id or name; `with_spec=False` leaves out the spec (what pollers need is small)."""
        view = controller_pb2.EXPERIMENT_VIEW_FULL if with_spec else controller_pb2.EXPERIMENT_VIEW_SUMMARY
        with rpc_errors("get experiment"):
            return self.controller.GetExperiment(controller_pb2.GetExperimentRequest(id=experiment, view=view),
                                                 timeout=30)

    def list_experiments(self, *, states: Sequence[int] = (), labels: Mapping[str, str] | None = None,
                         name_prefix: str = "", limit: int | None = None,
                         with_spec: bool = False) -> Iterator[controller_pb2.Experiment]:
        """Experiments, newest first; without their specs unless `with_spec`."""
        view = controller_pb2.EXPERIMENT_VIEW_FULL if with_spec else controller_pb2.EXPERIMENT_VIEW_SUMMARY
        token, seen = "", 0
        while True:
            with rpc_errors("list experiments"):
                page = self.controller.ListExperiments(controller_pb2.ListExperimentsRequest(
                    states=list(states), labels=dict(labels or {}), name_prefix=name_prefix, view=view,
                    page=common_pb2.PageRequest(page_size=min(limit or 500, 500), page_token=token)), timeout=30)
            for experiment in page.experiments:
                yield experiment
                seen += 1
                if limit and seen >= limit:
                    return
            token = page.next_page_token
            if not token:
                return

    def watch(self, experiment: str, *, reconnect_s: float = 300.0,
              timeout: float | None = None) -> Iterator[controller_pb2.ExperimentEvent]:
        """Events until the experiment ends; reconnects (getting a fresh snapshot) if the controller restarts.
        Raises TimeoutError when it has not ended within `timeout` seconds, events or not."""
        until = None if timeout is None else time.monotonic() + timeout
        deadline = None
        while True:
            remaining = None if until is None else max(until - time.monotonic(), 0.001)
            try:
                for event in self.controller.WatchExperiment(controller_pb2.WatchExperimentRequest(id=experiment),
                                                             timeout=remaining):
                    deadline = None
                    yield event
                    if event.HasField("experiment") and not event.snapshot and event.experiment.state in FINISHED:
                        return
                final = self.get_experiment(experiment, with_spec=False)
                if final.state in FINISHED:
                    return
            except grpc.RpcError as exc:
                if until is not None and time.monotonic() >= until:
                    raise TimeoutError(f"experiment {experiment} still running after {timeout:g}s") from None
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                                      grpc.StatusCode.INTERNAL):
                    with rpc_errors("watch"):
                        raise
                deadline = deadline or time.monotonic() + reconnect_s
                if time.monotonic() > deadline:
                    raise UnavailableError(f"watch: controller unreachable for {reconnect_s:g}s") from None
                time.sleep(1.0)

    def wait(self, experiment: str, timeout: float | None = None) -> controller_pb2.Experiment:
        """Blocks until the experiment ends (TimeoutError after `timeout` seconds); returns its final state."""
        for _ in self.watch(experiment, timeout=timeout):
            pass
        return self.get_experiment(experiment)

    def cancel(self, experiment: str, reason: str = "") -> controller_pb2.Experiment:
        with rpc_errors("cancel"):
            return self.controller.CancelExperiment(
                controller_pb2.CancelExperimentRequest(id=experiment, reason=reason), timeout=60)

    # --- tasks -----------------------------------------------------------------------------------

    def tasks(self, experiment: str, *, states: Sequence[int] = (), kind: str = "") -> list[controller_pb2.Task]:
        tasks, token = [], ""
        while True:
            with rpc_errors("list tasks"):
                page = self.controller.ListTasks(controller_pb2.ListTasksRequest(
                    experiment_id=experiment, states=list(states), kind=kind,
                    page=common_pb2.PageRequest(page_size=1000, page_token=token)), timeout=60)
            tasks.extend(page.tasks)
            token = page.next_page_token
            if not token:
                return tasks

    def get_task(self, task: str) -> controller_pb2.Task:
        with rpc_errors("get task"):
            return self.controller.GetTask(controller_pb2.GetTaskRequest(id=task), timeout=30)

    def retry_task(self, task: str) -> controller_pb2.Task:
        with rpc_errors("retry task"):
            return self.controller.RetryTask(controller_pb2.RetryTaskRequest(id=task), timeout=60)

    def kinds(self) -> controller_pb2.ListTaskKindsResponse:
        with rpc_errors("list kinds"):
            return self.controller.ListTaskKinds(controller_pb2.ListTaskKindsRequest(), timeout=30)

    # --- results ---------------------------------------------------------------------------------

    def _query(self, table: int, **filters: Any) -> Iterator[result_store_pb2.QueryRow]:
        token = ""
        while True:
            with rpc_errors("query results"):
                page = self.stub("result-store").Query(result_store_pb2.QueryRequest(
                    table=table, page=common_pb2.PageRequest(page_size=5000, page_token=token), **filters), timeout=60)
            yield from page.rows
            token = page.next_page_token
            if not token:
                return

    def results(self, experiment: str, *, kind: str = "", labels: Mapping[str, str] | None = None,
                task: str = "") -> list[dict[str, Any]]:
        """Result rows of an experiment: each row's values plus `task` and `kind`."""
        experiment_id = self.get_experiment(experiment, with_spec=False).id
        return [{"task": row.task_name, "kind": row.kind, **from_struct(row.values)}
                for row in self._query(result_store_pb2.QUERY_TABLE_RESULTS, experiment_id=experiment_id, kind=kind,
                                       labels=dict(labels or {}), task_id=task)]

    def metrics(self, experiment: str, *, name: str = "", task: str = "") -> list[dict[str, Any]]:
        experiment_id = self.get_experiment(experiment, with_spec=False).id
        return [{"task_id": row.task_id, "kind": row.kind, **from_struct(row.values)}
                for row in self._query(result_store_pb2.QUERY_TABLE_METRICS, experiment_id=experiment_id,
                                       metric_name=name, task_id=task)]

    def progress(self, experiment: str) -> result_store_pb2.ProgressResponse:
        experiment_id = self.get_experiment(experiment, with_spec=False).id
        with rpc_errors("progress"):
            return self.stub("result-store").Progress(result_store_pb2.ProgressRequest(experiment_id=experiment_id),
                                                      timeout=30)
