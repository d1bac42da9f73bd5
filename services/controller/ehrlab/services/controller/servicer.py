"""gRPC servicer of the controller: requests in, engine commands and state snapshots out."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import grpc

from ehrlab.core.config import Layer
from ehrlab.core.errors import NotFoundError, SpecError
from ehrlab.core.kinds import registry
from ehrlab.core.planning import PlanContext, planners
from ehrlab.core.wire import from_struct
from ehrlab.engine import convert, store
from ehrlab.engine.events import END
from ehrlab.engine.model import EXP_FINISHED, ExperimentRecord, TaskRecord
from ehrlab.engine.planning import plan_experiment
from ehrlab.engine.reconciler import Engine
from ehrlab.v1 import common_pb2, controller_pb2, controller_pb2_grpc

_DEFAULT_PAGE = 100
_MAX_PAGE = 1000
_FINISHED_CACHED = 1024  # finished experiments kept as answers to GetExperiment


def _page_size(page: common_pb2.PageRequest) -> int:
    if page.page_size < 0:
        raise SpecError("must not be negative", path="page.page_size")
    return min(page.page_size or _DEFAULT_PAGE, _MAX_PAGE)


class ControllerServicer(controller_pb2_grpc.ControllerServicer):
    def __init__(self, engine: Engine, services: Mapping[str, Any] | None = None) -> None:
        self.engine = engine
        self.db = engine.db
        self.services = services or {}
        # finished experiments by id, oldest first: (with the spec, without it)
        self._finished: OrderedDict[str, tuple[controller_pb2.Experiment, controller_pb2.Experiment]] = OrderedDict()
        self._finished_lock = threading.Lock()

    # --- experiments -----------------------------------------------------------------------------

    def SubmitExperiment(self, request: controller_pb2.SubmitExperimentRequest,
                         context: grpc.ServicerContext) -> controller_pb2.Experiment:
        if not request.layers:
            raise SpecError("at least one spec layer is required", path="layers")
        layers = [Layer(layer.source or f"layer {i + 1}", from_struct(layer.content))
                  for i, layer in enumerate(request.layers)]
        opts = request.options
        overrides: dict[str, Any] = {}
        if opts.force_kinds:
            overrides["force"] = list(opts.force_kinds)
        if opts.skip_kinds:
            overrides["skip"] = list(opts.skip_kinds)
        if opts.failfast:
            overrides["failfast"] = True
        if opts.max_attempts:
            overrides["max_attempts"] = opts.max_attempts
        if opts.max_parallel:
            overrides["max_parallel"] = opts.max_parallel
        plan = plan_experiment(layers, overrides, PlanContext(services=self.services))
        if opts.dry_run:
            record = self.engine.records_from_plan(plan, request_id=request.request_id, labels=dict(request.labels))
            message = convert.experiment(record)
            message.tasks.extend(convert.task(t, self.engine.artifacts.uri) for t in record.tasks.values())
            return message
        experiment_id, _ = self.engine.submit(plan, request_id=request.request_id, labels=dict(request.labels))
        return self._experiment(experiment_id)

    def _experiment(self, id_or_name: str, *, with_spec: bool = True) -> controller_pb2.Experiment:
        snapshot = self.engine.snapshot(id_or_name)
        if snapshot is not None:
            return convert.experiment(*snapshot, with_spec=with_spec)
        with self._finished_lock:
            cached = self._finished.get(id_or_name)
        if cached is not None:
            full, summary = cached
            return full if with_spec else summary
        reactivations = self.engine.reactivations
        row = store.get_experiment_row(self.db, id_or_name)
        if row is None:
            raise NotFoundError(f"no experiment {id_or_name!r}")
        snapshot = self.engine.snapshot(row["id"])  # found by name: it may be active
        if snapshot is not None:
            return convert.experiment(*snapshot, with_spec=with_spec)
        record = store.experiment_from_row(row)
        full, summary = (convert.experiment(record, row["counts"], with_spec=spec) for spec in (True, False))
        with self._finished_lock:
            # a finished experiment changes only when a retry makes it active again (which empties this)
            if full.state in EXP_FINISHED and reactivations == self.engine.reactivations:
                self._finished[full.id] = (full, summary)
                while len(self._finished) > _FINISHED_CACHED:
                    self._finished.popitem(last=False)
        return full if with_spec else summary

    def GetExperiment(self, request: controller_pb2.GetExperimentRequest,
                      context: grpc.ServicerContext) -> controller_pb2.Experiment:
        if not request.id:
            raise SpecError("an experiment id or name is required", path="id")
        return self._experiment(request.id, with_spec=request.view != controller_pb2.EXPERIMENT_VIEW_SUMMARY)

    def ListExperiments(self, request: controller_pb2.ListExperimentsRequest,
                        context: grpc.ServicerContext) -> controller_pb2.ListExperimentsResponse:
        with_spec = request.view == controller_pb2.EXPERIMENT_VIEW_FULL
        rows, token = store.list_experiment_rows(
            self.db, states=list(request.states), labels=dict(request.labels), name_prefix=request.name_prefix,
            page_size=_page_size(request.page), page_token=request.page.page_token, with_spec=with_spec)
        experiments = []
        for row in rows:
            snapshot = self.engine.snapshot(row["id"])
            experiments.append(convert.experiment(*snapshot, with_spec=with_spec) if snapshot else
                               convert.experiment(store.experiment_from_row(row), row["counts"], with_spec=with_spec))
        return controller_pb2.ListExperimentsResponse(experiments=experiments, next_page_token=token)

    def WatchExperiment(self, request: controller_pb2.WatchExperimentRequest,
                        context: grpc.ServicerContext) -> Iterator[controller_pb2.ExperimentEvent]:
        experiment = self._experiment(request.id)
        subscription = self.engine.bus.subscribe(experiment.id)
        sequence = 0

        def event(snapshot: bool = False, **payload: Any) -> controller_pb2.ExperimentEvent:
            nonlocal sequence
            sequence += 1
            message = controller_pb2.ExperimentEvent(sequence=sequence, snapshot=snapshot, **payload)
            message.time.GetCurrentTime()
            return message

        try:
            experiment = self._experiment(experiment.id)  # after subscribing: no change is missed
            yield event(snapshot=True, experiment=experiment)
            for task in self._all_tasks(experiment.id):
                yield event(snapshot=True, task=task)
            if experiment.state in EXP_FINISHED:  # (its END may have gone out before we subscribed)
                return
            while context.is_active():
                item = subscription.get(timeout=1.0)
                if item is None and self.engine.snapshot(experiment.id) is not None:
                    continue  # still active: keep waiting
                if item is None or item is END:
                    yield event(experiment=self._experiment(experiment.id))
                    return
                if isinstance(item, controller_pb2.Task):
                    yield event(task=item)
                else:
                    yield event(experiment=item)
        finally:
            subscription.close()

    def CancelExperiment(self, request: controller_pb2.CancelExperimentRequest,
                         context: grpc.ServicerContext) -> controller_pb2.Experiment:
        experiment = self._experiment(request.id)
        self.engine.cancel(experiment.id, f"cancelled: {request.reason}" if request.reason else "cancelled")
        return self._experiment(experiment.id)

    # --- tasks -----------------------------------------------------------------------------------

    def _active_tasks(self, experiment_id: str) -> list[TaskRecord] | None:
        with self.engine.lock:
            exp: ExperimentRecord | None = self.engine.experiments.get(experiment_id)
            if exp is None:
                return None
            return sorted(exp.tasks.values(), key=lambda t: t.seq)

    def _all_tasks(self, experiment_id: str) -> Iterator[controller_pb2.Task]:
        uri = self.engine.artifacts.uri
        active = self._active_tasks(experiment_id)
        if active is not None:
            for task in active:
                yield convert.task(task, uri)
            return
        token = ""
        while True:
            rows, token = store.list_task_rows(self.db, experiment_id, states=[], kind="", page_size=_MAX_PAGE,
                                               page_token=token)
            for row in rows:
                yield convert.task(store.task_from_row(row), uri)
            if not token:
                return

    def ListTasks(self, request: controller_pb2.ListTasksRequest,
                  context: grpc.ServicerContext) -> controller_pb2.ListTasksResponse:
        experiment = self._experiment(request.experiment_id)
        size = _page_size(request.page)
        active = self._active_tasks(experiment.id)
        if active is None:
            rows, token = store.list_task_rows(self.db, experiment.id, states=list(request.states), kind=request.kind,
                                               page_size=size, page_token=request.page.page_token)
            uri = self.engine.artifacts.uri
            return controller_pb2.ListTasksResponse(tasks=[convert.task(store.task_from_row(r), uri) for r in rows],
                                                    next_page_token=token)
        # the same keyset token (the last seq) as the database path: a listing may cross the moment the
        # experiment finishes and leaves memory
        after = int(store.decode_token(request.page.page_token)[0]) if request.page.page_token else -1
        chosen = [t for t in active if t.seq > after and (not request.states or t.state in request.states)
                  and (not request.kind or t.kind == request.kind)]
        page = chosen[:size]
        token = store.encode_token([page[-1].seq]) if len(chosen) > size else ""
        return controller_pb2.ListTasksResponse(tasks=[convert.task(t, self.engine.artifacts.uri) for t in page],
                                                next_page_token=token)

    def GetTask(self, request: controller_pb2.GetTaskRequest, context: grpc.ServicerContext) -> controller_pb2.Task:
        with self.engine.lock:
            entry = self.engine.task_entry(request.id)
            if entry is not None:
                return self._task_with_inputs(*entry)
        row = store.get_task_row(self.db, request.id)
        if row is None:
            raise NotFoundError(f"no task {request.id!r}")
        return convert.task(store.task_from_row(row), self.engine.artifacts.uri)

    def _task_with_inputs(self, exp: ExperimentRecord, task: TaskRecord) -> controller_pb2.Task:
        """A task as its runner needs it: upstream inputs carry the digests of the outputs they read."""
        message = convert.task(task, self.engine.artifacts.uri)
        for name, ref in task.inputs.items():
            if "node" in ref:
                upstream = exp.tasks[ref["node"]]
                message.inputs[name].digest = upstream.output_digest or ""
        message.attempt = task.launches
        return message

    def RetryTask(self, request: controller_pb2.RetryTaskRequest, context: grpc.ServicerContext) -> controller_pb2.Task:
        task = self.engine.retry(request.id)
        with self._finished_lock:
            self._finished.clear()
        return convert.task(task, self.engine.artifacts.uri)

    def ListTaskKinds(self, request: controller_pb2.ListTaskKindsRequest,
                      context: grpc.ServicerContext) -> controller_pb2.ListTaskKindsResponse:
        kinds = []
        for kind in sorted(registry().values(), key=lambda k: k.name):
            kinds.append(controller_pb2.TaskKindInfo(
                name=kind.name, service=kind.service, code_version=kind.code_version,
                inputs=[*kind.inputs, *(f"{n}?" for n in kind.optional_inputs)],
                params_schema=convert.struct(json.loads(json.dumps(kind.params.model_json_schema(), default=str))),
                resources=convert.resources(kind.resources), timeout_seconds=kind.timeout_s))
        return controller_pb2.ListTaskKindsResponse(kinds=kinds, planners=sorted(planners()))

