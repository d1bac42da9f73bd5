"""The engine: one thread that drives every active experiment towards completion.

It is level-triggered, as Kubernetes controllers are: each pass looks at what is (task states, the
launcher's view of attempts, artifacts in the store) and acts to reach what should be. All state
that matters is written to PostgreSQL before it is acted on (an attempt row exists before its
process or Job does), so after any crash `recover()` rebuilds the picture from the database and the
launcher (which adopts attempts still running) and carries on: no completed task runs again and no
running one is lost.

Servicer threads never touch the records directly: they hand work to the loop (`call`) and read
snapshots under the lock.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta
from typing import Any, TypeVar

from ehrlab.core.artifacts import ArtifactStore
from ehrlab.core.artifacts.manifest import load_complete, load_many
from ehrlab.core.errors import ConflictError, FailedPreconditionError, NotFoundError
from ehrlab.core.hashing import hash_value
from ehrlab.core.kinds import get_kind
from ehrlab.core.runner import InputRef, TaskSpec
from ehrlab.engine import convert, metrics, store
from ehrlab.engine.events import EventBus
from ehrlab.engine.launchers import Attempt, AttemptResult, Launcher, Outcome
from ehrlab.engine.model import (
    CACHED,
    CANCELLED,
    DONE,
    EXP_CANCELLED,
    EXP_FAILED,
    EXP_FINISHED,
    EXP_RUNNING,
    EXP_STATE_NAMES,
    EXP_SUCCEEDED,
    FAILED,
    FINISHED,
    PENDING,
    READY,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    TASK_STATE_NAMES,
    ExperimentRecord,
    TaskRecord,
)
from ehrlab.engine.planning import Plan

log = logging.getLogger("ehrlab.engine")
T = TypeVar("T")
_SCAN_LIMIT = 64  # ready tasks looked at per experiment per pass when the head does not fit


class Engine:
    def __init__(self, db: Any, artifacts: ArtifactStore, launcher: Launcher, *, launcher_name: str = "local",
                 forwarder: Any = None, bus: EventBus | None = None, idle_interval_s: float = 0.5) -> None:
        self.db = db
        self.artifacts = artifacts
        self.launcher = launcher
        self.launcher_name = launcher_name
        self.forwarder = forwarder
        self.bus = bus or EventBus()
        self.idle_interval_s = idle_interval_s
        self.experiments: dict[str, ExperimentRecord] = {}
        self._tasks: dict[str, tuple[ExperimentRecord, TaskRecord]] = {}
        self._attempts: dict[str, tuple[TaskRecord, Attempt, float]] = {}
        self._ready: dict[str, list[tuple[int, str]]] = {}       # experiment id -> heap of (seq, task id)
        self._delayed: list[tuple[float, str]] = []               # (wall time, task id) retry backoffs
        self._running_prefixes: dict[str, str] = {}               # artifact prefix -> task id running it
        self._waiting: dict[str, list[str]] = {}                  # prefix -> ready task ids waiting for it
        self._completed_prefixes: set[str] = set()
        self._waiting_checked = 0.0
        self._dirty_tasks: dict[str, TaskRecord] = {}
        self._rekeyed: dict[str, TaskRecord] = {}                 # tasks whose key and inputs changed
        self._dirty_experiments: dict[str, ExperimentRecord] = {}
        self._new_attempts: list[dict[str, Any]] = []
        self._attempt_updates: list[dict[str, Any]] = []
        self._commands: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lock = threading.RLock()
        self.reactivations = 0  # finished experiments made active again (see _reactivate)
        self._finishing: list[ExperimentRecord] = []  # finished in this pass, announced after the commit

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=30)
        self._flush()
        self.launcher.close()

    def wake(self) -> None:
        self._wake.set()

    def post(self, work: Callable[[], T]) -> Future[T]:
        """Runs `work` on the engine thread, between passes."""
        future: Future[T] = Future()
        self._commands.put((work, future))
        self._wake.set()
        return future

    def call(self, work: Callable[[], T], timeout: float = 60.0) -> T:
        """Runs `work` on the engine thread and waits for its result."""
        return self.post(work).result(timeout=timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.idle_interval_s)
            self._wake.clear()
            start = time.perf_counter()
            try:
                self.reconcile()
            except Exception:  # a pass must never kill the engine; the next pass retries
                log.exception("reconcile pass failed")
                time.sleep(0.5)
            metrics.RECONCILE_SECONDS.observe(time.perf_counter() - start)

    # --- recovery --------------------------------------------------------------------------------

    def recover(self) -> None:
        """Rebuilds the in-memory picture from the database and re-attaches to running attempts."""
        experiments, open_attempts = store.load_active(self.db)
        by_task = {a["task_id"]: a for a in open_attempts}
        to_adopt: list[Attempt] = []
        with self.lock:
            for exp in experiments:
                self._register(exp)
                for task in exp.tasks.values():
                    if task.state == RUNNING:
                        row = by_task.get(task.id)
                        if row is None:  # never reached the launcher: ready again, no attempt used
                            self._set_state(exp, task, READY)
                            self._enqueue(exp, task)
                            continue
                        attempt = self._make_attempt(exp, task, number=row["number"])
                        attempt.handle = dict(row["handle"])
                        self._track_attempt(task, attempt)
                        to_adopt.append(attempt)
                    elif task.state == READY:
                        self._enqueue(exp, task)
                self._evaluate_all(exp)
                if self.forwarder:
                    self.forwarder.resync(exp)
                for task in exp.tasks.values():
                    if task.state in DONE and not task.results_done:
                        self._forward(exp, task, None)
        if to_adopt:
            self.launcher.adopt(to_adopt)
        with self.lock:
            for exp in experiments:
                if exp.cancel_requested:  # a cancel that was stored but not finished before the restart
                    self._cancel_now(exp, "cancelled")
        log.info("recovered %d active experiments, adopted %d running attempts", len(experiments), len(to_adopt))
        self._flush()

    # --- commands from the servicer --------------------------------------------------------------

    def submit(self, plan: Plan, *, request_id: str, labels: dict[str, str]) -> tuple[str, bool]:
        """Stores a planned experiment and starts it. Returns (experiment id, created?)."""
        exp = self.records_from_plan(plan, request_id=request_id, labels=labels)
        experiment_id, spec_hash = store.insert_experiment(self.db, exp, plan.spec_hash)
        if experiment_id != exp.id:
            if spec_hash != plan.spec_hash:
                raise ConflictError(f"request id {request_id!r} was used for a different experiment "
                                    f"({experiment_id}); use a new request id")
            return experiment_id, False
        self.call(lambda: self._admit(exp))
        return experiment_id, True

    def cancel(self, experiment_id: str, reason: str = "cancelled") -> None:
        if not store.request_cancel(self.db, experiment_id):
            row = store.get_experiment_row(self.db, experiment_id)
            if row is None:
                raise NotFoundError(f"no experiment {experiment_id!r}")
            return  # already finished: nothing to stop

        def apply() -> None:
            exp = self.experiments.get(experiment_id)
            if exp is not None and not exp.cancel_requested:
                self._cancel_now(exp, reason)

        self.call(apply)

    def retry(self, task_id: str) -> TaskRecord:
        return self.call(lambda: self._retry(task_id))

    def snapshot(self, experiment_id: str) -> tuple[ExperimentRecord, dict[str, int]] | None:
        """An active experiment and its counts, consistent with each other; None if not active."""
        with self.lock:
            exp = self.experiments.get(experiment_id)
            return (exp, exp.counts_dict()) if exp else None

    def task_entry(self, task_id: str) -> tuple[ExperimentRecord, TaskRecord] | None:
        """An active task and its experiment (read under `lock`)."""
        return self._tasks.get(task_id)

    # --- planning records ------------------------------------------------------------------------

    def records_from_plan(self, plan: Plan, *, request_id: str, labels: dict[str, str]) -> ExperimentRecord:
        now = store.now()
        exp_id = f"x{uuid.uuid4().hex[:12]}"
        exp = ExperimentRecord(
            id=exp_id, name=plan.spec.name, request_id=request_id or f"auto-{uuid.uuid4().hex}",
            planner=plan.spec.planner, spec=plan.merged.data, options=plan.options.model_dump(),
            labels={**plan.labels, **labels}, state=EXP_RUNNING, created_at=now, started_at=now)
        planned = {t.name: t for t in plan.tasks}
        # what is already in the store for these keys (one parallel pass: fast for S3 too)
        lookups = [t for t in plan.tasks if not t.forced]
        found = dict(zip([t.name for t in lookups], load_many(self.artifacts, [t.prefix for t in lookups]),
                         strict=True))
        for t in plan.tasks:
            inputs = {}
            for name, ref in t.inputs.items():
                if "node" in ref:
                    up = planned[ref["node"]]
                    inputs[name] = {"node": up.name, "dataset": up.dataset, "kind": up.kind, "key": up.key}
                else:
                    inputs[name] = dict(ref)
            manifest = found.get(t.name)
            state = PENDING
            if manifest is not None:
                state = CACHED
            elif t.skip:
                state = SKIPPED
            task = TaskRecord(
                id=f"{exp_id}-{t.seq}", experiment_id=exp_id, seq=t.seq, name=t.name, kind=t.kind, key=t.key,
                dataset=t.dataset, service=t.service, code_version=t.code_version, params=t.params, inputs=inputs,
                depends_on=t.depends_on, resources=t.resources, timeout_s=t.timeout_s, max_attempts=t.max_attempts,
                labels=t.labels, forced=t.forced, skip=t.skip, state=state, created_at=now,
                error="skipped on request" if state == SKIPPED else "")
            if manifest is not None:
                task.output_digest, task.output_size, task.finished_at = manifest.digest, manifest.size, now
                task.manifest = manifest
            exp.tasks[t.name] = task
        exp.index()
        return exp

    # --- the pass --------------------------------------------------------------------------------

    def reconcile(self) -> None:
        """One pass. Everything it decided is committed in one transaction before any attempt launches."""
        with self.lock:
            self._run_commands()
            for result in self.launcher.poll():
                self._on_result(result)
            self._release_delayed()
            launches = self._select_launches()
            self._note_waiting()
            for exp in list(self.experiments.values()):
                self._maybe_finish(exp)
        try:
            self._flush()
        except Exception:
            with self.lock:  # nothing launches before it is recorded: these go back to the queue
                for attempt in launches:
                    self._on_result(AttemptResult(attempt.attempt_id, Outcome.DISRUPTED,
                                                  "not launched: its record could not be written"))
            raise
        if launches:
            # handles are not stored: launchers find their attempts again (attempt files, Job labels)
            self.launcher.launch(launches)
        with self.lock:
            for exp in [e for e in self.experiments.values() if e.state in EXP_FINISHED]:
                self._unregister(exp)
        metrics.LAUNCHER_RUNNING.labels(self.launcher_name).set(len(self._attempts))

    def _note_waiting(self) -> None:
        """Shows why launched attempts are not running yet (every couple of seconds; the launcher watches)."""
        now = time.monotonic()
        if now - self._waiting_checked < 2.0:
            return
        self._waiting_checked = now
        reasons = self.launcher.waiting()
        for attempt_id, (task, _, _) in self._attempts.items():
            reason = reasons.get(attempt_id, "")
            if reason != task.waiting:
                task.waiting = reason
                exp = self._tasks[task.id][0]
                if self.bus.watched(exp.id):
                    self.bus.publish(exp.id, convert.task(task, self.artifacts.uri))

    def _run_commands(self) -> None:
        while True:
            try:
                work, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(work())
                except Exception as exc:
                    future.set_exception(exc)

    def _flush(self) -> None:
        with self.lock:
            tasks, self._dirty_tasks = list(self._dirty_tasks.values()), {}
            experiments, self._dirty_experiments = list(self._dirty_experiments.values()), {}
            new, self._new_attempts = self._new_attempts, []
            updates, self._attempt_updates = self._attempt_updates, []
            rekeyed, self._rekeyed = list(self._rekeyed.values()), {}
            finishing, self._finishing = self._finishing, []
        try:
            store.flush(self.db, tasks=tasks, new_attempts=new, attempt_updates=updates, experiments=experiments,
                        rekeyed=rekeyed)
        except Exception:
            with self.lock:  # not written: kept (before anything newer) for the next flush
                self._dirty_tasks = {**{t.id: t for t in tasks}, **self._dirty_tasks}
                self._dirty_experiments = {**{e.id: e for e in experiments}, **self._dirty_experiments}
                self._new_attempts = new + self._new_attempts
                self._attempt_updates = updates + self._attempt_updates
                self._rekeyed = {**{t.id: t for t in rekeyed}, **self._rekeyed}
                self._finishing = finishing + self._finishing
            raise
        for exp in finishing:
            self._announce(exp)
            self.bus.finish(exp.id)

    # --- registration ----------------------------------------------------------------------------

    def _register(self, exp: ExperimentRecord) -> None:
        self.experiments[exp.id] = exp
        self._ready[exp.id] = []
        for task in exp.tasks.values():
            self._tasks[task.id] = (exp, task)
            if task.state not in FINISHED:
                metrics.TASKS.labels(TASK_STATE_NAMES[task.state], task.kind).inc()
        metrics.EXPERIMENTS.labels(EXP_STATE_NAMES[exp.state]).inc()
        metrics.PROGRESS.labels(exp.id).set(exp.progress)

    def _unregister(self, exp: ExperimentRecord) -> None:
        del self.experiments[exp.id]
        self._ready.pop(exp.id, None)
        for task in exp.tasks.values():
            self._tasks.pop(task.id, None)
        metrics.PROGRESS.remove(exp.id)

    def _admit(self, exp: ExperimentRecord) -> None:
        self._register(exp)
        for task in exp.tasks.values():
            # a task enters its first state (pending, or cached/skipped when planned) without _set_state
            metrics.TASK_TRANSITIONS.labels(TASK_STATE_NAMES[task.state], task.kind).inc()
            if task.state in DONE:
                metrics.CACHE_HITS.labels(task.kind).inc()
                self._forward(exp, task, task.manifest)
                task.manifest = None
        if self.forwarder:
            self.forwarder.resync(exp)
        self._evaluate_all(exp)
        self._publish_experiment(exp)

    # --- state changes ---------------------------------------------------------------------------

    def _set_state(self, exp: ExperimentRecord, task: TaskRecord, state: int, error: str | None = None) -> None:
        old = task.state
        if old == state and error is None:
            return
        task.state = state
        if error is not None:
            task.error = error
        exp.counts[old] -= 1
        exp.counts[state] += 1
        if old not in FINISHED:
            metrics.TASKS.labels(TASK_STATE_NAMES[old], task.kind).dec()
        if state not in FINISHED:
            metrics.TASKS.labels(TASK_STATE_NAMES[state], task.kind).inc()
        metrics.TASK_TRANSITIONS.labels(TASK_STATE_NAMES[state], task.kind).inc()
        if state in FINISHED and task.finished_at is None:
            task.finished_at = store.now()
        if state == READY:
            task.ready_since = time.monotonic()
        if not (old == PENDING and state == READY):  # readiness is recomputed on recovery: no write needed
            self._dirty_tasks[task.id] = task
        metrics.PROGRESS.labels(exp.id).set(exp.progress)
        if self.forwarder:
            self.forwarder.status(exp, task)
        if self.bus.watched(exp.id):
            self.bus.publish(exp.id, convert.task(task, self.artifacts.uri))

    def _publish_experiment(self, exp: ExperimentRecord) -> None:
        self._dirty_experiments[exp.id] = exp
        self._announce(exp)

    def _announce(self, exp: ExperimentRecord) -> None:
        """Tells the experiment's watchers its state (built only when someone watches)."""
        if self.bus.watched(exp.id):
            self.bus.publish(exp.id, convert.experiment(exp))

    def _evaluate_all(self, exp: ExperimentRecord) -> None:
        for task in sorted(exp.tasks.values(), key=lambda t: t.seq):
            if task.state == PENDING:
                self._evaluate(exp, task)

    def _evaluate(self, exp: ExperimentRecord, task: TaskRecord) -> None:
        """Moves a pending task on when its inputs allow: ready, cached, skipped or cancelled."""
        if exp.cancel_requested:
            self._set_state(exp, task, CANCELLED, "cancelled")
            return
        deps = [exp.tasks[name] for name in task.depends_on]
        broken = [d for d in deps if d.state in (FAILED, CANCELLED, SKIPPED)]
        droppable = self._optional_inputs_of(task, broken)
        if broken and droppable is None:
            first = broken[0]
            self._set_state(exp, task, SKIPPED, f"input {first.name!r} {TASK_STATE_NAMES[first.state]}")
            self._evaluate_users(exp, task)
            return
        if not all(d.state in DONE or d in broken for d in deps):
            return
        if droppable:
            self._run_without(exp, task, droppable)
        if not task.forced and task.prefix in self._completed_prefixes:
            manifest = load_complete(self.artifacts, task.prefix)
            if manifest is not None:
                self._mark_done(exp, task, CACHED, manifest)
                return
        if task.skip:
            self._set_state(exp, task, SKIPPED, "skipped on request")
            self._evaluate_users(exp, task)
            return
        self._set_state(exp, task, READY)
        self._enqueue(exp, task)

    def _optional_inputs_of(self, task: TaskRecord, broken: list[TaskRecord]) -> list[str] | None:
        """The inputs fed by `broken` upstream tasks if the kind can do without every one of them
        (aggregations over runs that may fail); None if the task cannot run without them."""
        if not broken:
            return []
        kind = get_kind(task.kind)
        if not kind.partial_inputs:
            return None
        optional = set(kind.optional_inputs)
        names = {d.name for d in broken}
        if names - {ref.get("node") for ref in task.inputs.values()}:  # an ordering-only dependency failed
            return None
        dropped = [n for n, ref in task.inputs.items() if ref.get("node") in names]
        if "*" in optional or all(n in optional for n in dropped):
            return dropped
        return None

    def _run_without(self, exp: ExperimentRecord, task: TaskRecord, dropped: list[str]) -> None:
        """Drops inputs whose producers failed. The task and everything it feeds get derived keys:
        a partial result must never be taken for the complete one, in this experiment or a later one."""
        producers = {task.inputs[name]["node"] for name in dropped}
        for name in dropped:
            del task.inputs[name]
        task.depends_on = [n for n in task.depends_on if n not in producers]  # stored: a restart sees the same
        stack, seen = [task], set()
        while stack:
            current = stack.pop()
            if current.name in seen:
                continue
            seen.add(current.name)
            current.key = hash_value({"key": current.key, "without": sorted(dropped), "at": task.name})[:40]
            for ref in current.inputs.values():  # users read the re-keyed output
                if ref.get("node") in seen:
                    ref["key"] = exp.tasks[ref["node"]].key
            self._rekeyed[current.id] = current
            stack.extend(exp.tasks[name] for name in exp.users.get(current.name, ()))
        log.info("%s: running %s without inputs %s (their producers did not succeed)", exp.id, task.name, dropped)

    def _evaluate_users(self, exp: ExperimentRecord, task: TaskRecord) -> None:
        for name in exp.users.get(task.name, ()):
            user = exp.tasks[name]
            if user.state == PENDING:
                self._evaluate(exp, user)

    def _mark_done(self, exp: ExperimentRecord, task: TaskRecord, state: int, manifest: Any) -> None:
        task.output_digest, task.output_size = manifest.digest, manifest.size
        if state == CACHED:
            metrics.CACHE_HITS.labels(task.kind).inc()
        self._set_state(exp, task, state, "")
        self._completed_prefixes.add(task.prefix)
        exp.pending_results += 1
        self._forward(exp, task, manifest)
        self._evaluate_users(exp, task)

    def _forward(self, exp: ExperimentRecord, task: TaskRecord, manifest: Any) -> None:
        """Hands a finished task's results to the forwarder (without one, they count as delivered)."""
        if self.forwarder:
            self.forwarder.results(exp, task, manifest)
        else:
            self.results_forwarded([task.id])

    def results_forwarded(self, task_ids: list[str]) -> None:
        """Called (on the engine thread) once a task's result rows reached the result-store."""
        for task_id in task_ids:
            entry = self._tasks.get(task_id)
            if entry is None:
                continue
            exp, task = entry
            if not task.results_done:  # stored in bulk when the experiment finishes (forwarding is idempotent)
                task.results_done = True
                exp.pending_results -= 1
                self.wake()

    def _enqueue(self, exp: ExperimentRecord, task: TaskRecord) -> None:
        heapq.heappush(self._ready[exp.id], (task.seq, task.id))

    def _release_delayed(self) -> None:
        now = time.time()
        while self._delayed and self._delayed[0][0] <= now:
            _, task_id = heapq.heappop(self._delayed)
            entry = self._tasks.get(task_id)
            if entry and entry[1].state == READY:
                entry[1].not_before = None
                self._enqueue(*entry)

    # --- launching -------------------------------------------------------------------------------

    def _select_launches(self) -> list[Attempt]:
        capacity = self.launcher.capacity()
        chosen: list[Attempt] = []
        for exp in list(self.experiments.values()):
            heap = self._ready.get(exp.id)
            if not heap or capacity.slots < 1:
                continue
            limit = exp.options.get("max_parallel") or 0
            passed: list[tuple[int, str]] = []
            scanned = 0
            while heap and capacity.slots >= 1 and (not limit or exp.running < limit) and scanned < _SCAN_LIMIT:
                seq, task_id = heapq.heappop(heap)
                entry = self._tasks.get(task_id)
                task = entry[1] if entry else None
                if task is None or task.state != READY:
                    continue
                if task.prefix in self._running_prefixes:  # the same work is running: wait for it
                    self._waiting.setdefault(task.prefix, []).append(task.id)
                    continue
                if not capacity.fits(task.resources):
                    passed.append((seq, task_id))
                    scanned += 1
                    continue
                capacity.take(task.resources)
                chosen.append(self._launch(exp, task))
            for entry in passed:
                heapq.heappush(heap, entry)
        return chosen

    def _make_attempt(self, exp: ExperimentRecord, task: TaskRecord, number: int) -> Attempt:
        inputs = {}
        for name, ref in task.inputs.items():
            if "node" in ref:
                upstream = exp.tasks[ref["node"]]
                inputs[name] = InputRef(dataset=upstream.dataset, kind=upstream.kind, key=upstream.key,
                                        digest=upstream.output_digest or "")
            else:
                inputs[name] = InputRef(uri=ref["uri"], digest=ref.get("digest", ""))
        spec = TaskSpec(task_id=task.id, kind=task.kind, key=task.key, dataset=task.dataset, params=task.params,
                        inputs=inputs, experiment_id=exp.id, name=task.name, attempt=number,
                        store_uri=self.artifacts.uri, labels=task.labels, resources=task.resources.model_dump())
        return Attempt(attempt_id=f"{task.id}.{number}", task_id=task.id, experiment_id=exp.id, number=number,
                       spec=spec, kind=get_kind(task.kind), resources=task.resources, timeout_s=task.timeout_s)

    def _track_attempt(self, task: TaskRecord, attempt: Attempt) -> None:
        exp = self._tasks[task.id][0]
        task.attempt_id = attempt.attempt_id
        self._attempts[attempt.attempt_id] = (task, attempt, time.monotonic())
        self._running_prefixes[task.prefix] = task.id
        exp.running += 1

    def _launch(self, exp: ExperimentRecord, task: TaskRecord) -> Attempt:
        task.launches += 1
        if task.started_at is None:
            task.started_at = store.now()
        metrics.LAUNCH_LATENCY.observe(time.monotonic() - task.ready_since)
        metrics.CACHE_MISSES.labels(task.kind).inc()
        attempt = self._make_attempt(exp, task, task.launches)
        self._set_state(exp, task, RUNNING)
        self._track_attempt(task, attempt)
        self._new_attempts.append({"id": attempt.attempt_id, "task_id": task.id, "number": task.launches,
                                   "state": "running", "launcher": self.launcher_name, "handle": {}})
        return attempt

    # --- outcomes --------------------------------------------------------------------------------

    def _on_result(self, result: AttemptResult) -> None:
        entry = self._attempts.pop(result.attempt_id, None)
        if entry is None:
            return  # an attempt we no longer track (already handled)
        task, attempt, started = entry
        exp = self._tasks[task.id][0]
        exp.running -= 1
        task.attempt_id, task.waiting = None, ""
        if self._running_prefixes.get(task.prefix) == task.id:
            del self._running_prefixes[task.prefix]
        outcome, message = result.outcome, result.message
        manifest = None
        if outcome is Outcome.SUCCEEDED:
            manifest = load_complete(self.artifacts, task.prefix)
            if manifest is None:
                outcome, message = Outcome.FAILED, "the attempt ended but its outputs are missing or incomplete"
        metrics.TASK_ATTEMPTS.labels(task.kind, outcome.value).inc()
        metrics.TASK_DURATION.labels(task.kind, outcome.value).observe(time.monotonic() - started)
        self._attempt_updates.append({"id": attempt.attempt_id, "state": outcome.value, "message": message[:4000],
                                      "exit_code": result.exit_code, "finished_at": store.now()})
        waiting = self._waiting.pop(task.prefix, [])
        if manifest is not None:
            task.attempts += 1
            self._mark_done(exp, task, SUCCEEDED, manifest)
        elif exp.cancel_requested:
            self._set_state(exp, task, CANCELLED, message or "cancelled")
        elif outcome is Outcome.DISRUPTED:
            log.info("attempt %s disrupted (%s): retrying without using an attempt", attempt.attempt_id, message)
            self._set_state(exp, task, READY, message)
            self._enqueue(exp, task)
        else:
            if outcome is Outcome.FAILED:
                task.attempts += 1
            retry = outcome is Outcome.FAILED and task.attempts < task.max_attempts
            if retry:
                backoff = float(exp.options.get("retry_backoff_s", 1.0)) * 2 ** (task.attempts - 1)
                task.not_before = store.now() + timedelta(seconds=backoff)
                self._set_state(exp, task, READY, f"attempt {task.attempts} failed: {message}")
                heapq.heappush(self._delayed, (time.time() + backoff, task.id))
            else:
                label = "pruned: " if outcome is Outcome.PRUNED else ""
                self._set_state(exp, task, FAILED, f"{label}{message}")
                self._evaluate_users(exp, task)
                if exp.options.get("failfast") and not exp.cancel_requested:
                    exp.error = f"failfast: task {task.name!r} failed: {message}"
                    self._cancel_now(exp, f"cancelled: task {task.name!r} failed (failfast)")
        for task_id in waiting:  # duplicates of this work: cached now, or run themselves
            other_exp, other = self._tasks.get(task_id, (None, None))
            if other is not None and other.state == READY:
                if manifest is not None and not other.forced:
                    self._mark_done(other_exp, other, CACHED, manifest)
                else:
                    self._enqueue(other_exp, other)

    def _cancel_now(self, exp: ExperimentRecord, reason: str) -> None:
        exp.cancel_requested = True
        self._publish_experiment(exp)
        running = []
        for task in exp.tasks.values():
            if task.state in (PENDING, READY):
                self._set_state(exp, task, CANCELLED, reason)
            elif task.state == RUNNING and task.attempt_id:
                running.append(task.attempt_id)
        if running:
            self.launcher.cancel(running, reason)

    def _retry(self, task_id: str) -> TaskRecord:
        entry = self._tasks.get(task_id)
        if entry is None:
            row = store.get_task_row(self.db, task_id)
            if row is None:
                raise NotFoundError(f"no task {task_id!r}")
            self._reactivate(row["experiment_id"])
            entry = self._tasks[task_id]
        exp, task = entry
        if task.state not in (FAILED, CANCELLED, SKIPPED):
            raise FailedPreconditionError(
                f"task {task.name!r} is {TASK_STATE_NAMES[task.state]}; only failed, cancelled or skipped tasks retry")
        exp.cancel_requested = False
        exp.error = ""
        again = [task]
        stack = [task.name]
        while stack:  # everything downstream that did not run because of it
            for name in exp.users.get(stack.pop(), ()):
                user = exp.tasks[name]
                if user.state in (SKIPPED, CANCELLED) and not user.skip:
                    again.append(user)
                    stack.append(name)
        for t in again:
            t.attempts, t.not_before, t.finished_at = 0, None, None
            self._set_state(exp, t, PENDING, "")
        if exp.state != EXP_RUNNING:
            exp.state, exp.finished_at = EXP_RUNNING, None
            metrics.EXPERIMENTS.labels(EXP_STATE_NAMES[EXP_RUNNING]).inc()
        self._publish_experiment(exp)
        self._evaluate_all(exp)
        return task

    def _reactivate(self, experiment_id: str) -> None:
        """Loads a finished experiment back into the engine (for a retry)."""
        self.reactivations += 1  # readers caching finished experiments drop what they read before
        row = store.get_experiment_row(self.db, experiment_id)
        exp = store.experiment_from_row(row)
        for task_row in store.list_task_rows(self.db, experiment_id, states=[], kind="", page_size=10**9,
                                             page_token="")[0]:
            task = store.task_from_row(task_row)
            exp.tasks[task.name] = task
        exp.index()
        metrics.EXPERIMENTS.labels(EXP_STATE_NAMES[exp.state]).dec()
        self._register(exp)

    def _maybe_finish(self, exp: ExperimentRecord) -> None:
        if exp.state in EXP_FINISHED:
            return
        if exp.counts[PENDING] or exp.counts[READY] or exp.counts[RUNNING] or exp.pending_results:
            return
        if exp.counts[FAILED]:
            state = EXP_FAILED
            if not exp.error:
                failed = sorted((t for t in exp.tasks.values() if t.state == FAILED), key=lambda t: t.seq)
                exp.error = f"{len(failed)} task(s) failed; first: {failed[0].name}: {failed[0].error}"
        elif exp.cancel_requested:
            state = EXP_CANCELLED
        else:
            state = EXP_SUCCEEDED
        metrics.EXPERIMENTS.labels(EXP_STATE_NAMES[exp.state]).dec()
        metrics.EXPERIMENTS_FINISHED.labels(EXP_STATE_NAMES[state]).inc()
        exp.state, exp.finished_at = state, store.now()
        self._dirty_experiments[exp.id] = exp
        if self.forwarder:
            self.forwarder.resync(exp)
        log.info("experiment %s (%s) %s: %s", exp.id, exp.name, EXP_STATE_NAMES[state], exp.counts_dict())
        self._finishing.append(exp)  # watchers hear of it once it is committed
