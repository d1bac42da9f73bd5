"""The trial scheduler: runs an objective study's trials as tasks, keeping `parallelism` of them busy.

One thread per running study. It asks the study for as many points as there are free slots, submits
each as a run (through a `TrialRunner`: the controller in production), and sleeps until a run ends;
the slot is refilled at once, without waiting for the rest of a batch. A run ends as:

- succeeded: the objective metric is read from the task's result rows -> COMPLETE (or FAIL if the
  task never reported the metric);
- failed after the study told it to stop -> PRUNED; failed otherwise -> FAIL with the task's error
  (the controller has already retried the attempt up to its max_attempts): the study goes on;
- cancelled by someone else, lost by the controller, or silent (no intermediate report for the
  study's heartbeat_timeout_s) -> submitted again with the same parameters as retry r+1, up to
  max_retries, then FAIL.

A run is submitted with the request id `hpo/{study}/{trial}/{retry}` and recorded with the trial, so
after a restart (of this process or the controller) every running trial is adopted again and a
resubmission returns the run that already exists: no trial is lost or run twice.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from optuna.trial import TrialState
from prometheus_client import Histogram

from ehrlab.core.errors import EhrlabError, NotFoundError, UnavailableError
from ehrlab.hpo.studies import StudyDefinition, StudyManager, TrialInfo

log = logging.getLogger("ehrlab.hpo.scheduler")
DEADLINE_ATTR = "ehrlab:deadline"
_RESUME_S = 2.0

SCHEDULE_LATENCY = Histogram(
    "ehrlab_hpo_schedule_latency_seconds", "From a trial's run ending to the next run being submitted",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


@dataclass
class RunResult:
    status: Literal["succeeded", "failed", "cancelled", "lost"]
    results: list[dict] | None = None   # the task's result rows (succeeded)
    error: str = ""


class TrialRunner(Protocol):
    """Runs one trial's task somewhere (the controller, or threads in tests)."""

    def submit(self, definition: StudyDefinition, trial: TrialInfo, retry: int) -> str:
        """Starts the trial's task; idempotent for the same (study, trial, retry). Returns a run id."""
        ...

    def watch(self, run_id: str, done: Callable[[str, RunResult], None]) -> None:
        """Calls `done(run_id, result)` once, from any thread, when the run ends."""
        ...

    def cancel(self, run_id: str, reason: str) -> None: ...

    def close(self) -> None: ...


def request_id(study: str, trial: int, retry: int) -> str:
    return f"hpo/{study}/{trial}/{retry}"


class TrialScheduler:
    def __init__(self, manager: StudyManager, runner: TrialRunner, *, poll_s: float = 1.0) -> None:
        self.manager = manager
        self.runner = runner
        self.poll_s = poll_s
        self._loops: dict[str, _StudyLoop] = {}
        self._lock = threading.Lock()

    def start(self, name: str, *, timeout_s: float | None = None) -> None:
        """Runs the study's trials (no-op while they already run).

        `timeout_s` (when given; 0 = none) sets when trials stop starting, counted from now: a resumed
        study gets its full timeout again. Without it, a deadline stored earlier stays.
        """
        if timeout_s is not None:
            self.manager.set_study_attr(name, DEADLINE_ATTR, time.time() + timeout_s if timeout_s else None)
        with self._lock:
            loop = self._loops.get(name)
            if loop is not None and loop.is_alive():
                return
            loop = self._loops[name] = _StudyLoop(self, name)
            loop.start()

    def resume_all(self) -> list[str]:
        """After a restart: every objective study with work left starts again."""
        resumed = []
        for name in self.manager.ehrlab_names():
            definition = self.manager.definition(name)
            if definition.objective is not None and not _finished(self.manager, name)[0]:
                self.start(name)
                resumed.append(name)
        return resumed

    def status(self, name: str) -> tuple[bool, str]:
        """(finished, error): finished once no trial runs and none will start."""
        loop = self._loops.get(name)
        if loop is not None and loop.is_alive():
            return False, ""
        if loop is not None and loop.error:
            return True, loop.error
        if self.manager.definition(name).objective is None:
            return False, ""
        return _finished(self.manager, name)

    def wait(self, name: str, timeout: float | None = None) -> bool:
        loop = self._loops.get(name)
        if loop is not None:
            loop.join(timeout)
        return self.status(name)[0]

    def close(self) -> None:
        for loop in list(self._loops.values()):
            loop.stop.set()
            loop.events.put(None)
        for loop in list(self._loops.values()):
            loop.join(timeout=10)
        self.runner.close()


def _finished(manager: StudyManager, name: str) -> tuple[bool, str]:
    summary = manager.summary(name)
    definition = summary.definition
    deadline = manager.study_attr(name, DEADLINE_ATTR)
    busy = summary.counts["running"] + summary.counts["waiting"]
    out_of_budget = definition.n_trials and summary.counted >= definition.n_trials
    out_of_time = deadline is not None and time.time() >= deadline
    return (not busy and bool(out_of_budget or out_of_time)), ""


@dataclass
class _Active:
    run_id: str
    retry: int
    ended: float | None = None


class _StudyLoop(threading.Thread):
    def __init__(self, scheduler: TrialScheduler, name: str) -> None:
        super().__init__(name=f"hpo-study-{name}", daemon=True)
        self.scheduler = scheduler
        self.manager = scheduler.manager
        self.runner = scheduler.runner
        self.name_ = name
        self.events: queue.Queue[tuple[str, RunResult] | None] = queue.Queue()
        self.stop = threading.Event()
        self.active: dict[int, _Active] = {}
        self.by_run: dict[str, int] = {}
        self.error = ""
        self.last_end: float | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._adopt()
                while not self.stop.is_set():
                    if not self._fill() and not self.active:
                        return
                    self._wait_for_events()
                    self._check_silent()
            except UnavailableError as exc:  # the controller or the database is restarting: pick up again
                log.warning("study %s: %s; resuming in %.0fs", self.name_, exc, _RESUME_S)
                self.stop.wait(_RESUME_S)
            except Exception as exc:  # keep the study's state; report why it stopped
                log.exception("study %s: scheduler stopped", self.name_)
                self.error = f"{type(exc).__name__}: {exc}"
                return

    # -- starting runs ------------------------------------------------------------------------------
    def _adopt(self) -> None:
        """Follows running trials nobody follows: after a restart, or a submit that failed half-way
        (submitting again under the same request id finds the run if it was created)."""
        definition = self.manager.definition(self.name_)
        for trial in self.manager.summary(self.name_, trials=True).trials:
            if trial.state != TrialState.RUNNING or trial.number in self.active:
                continue
            retry = int(trial.user_attrs.get("retry", 0))
            self._launch(definition, trial, retry)

    def _launch(self, definition: StudyDefinition, trial: TrialInfo, retry: int) -> None:
        if retry:  # must be durable before the run: a restart resubmits under the recorded retry number
            self.manager.set_trial_attrs(self.name_, trial.number, {"retry": retry})
        run_id = self.runner.submit(definition, trial, retry)
        if trial.user_attrs.get("experiment_id") != run_id:
            # for display only: after a crash the same request id finds the same run again
            self.manager.set_trial_attrs(self.name_, trial.number, {"experiment_id": run_id}, wait=False)
        self.active[trial.number] = _Active(run_id, retry)
        self.by_run[run_id] = trial.number
        self.manager.heartbeat(self.name_, trial.number)
        self.runner.watch(run_id, lambda rid, result: self.events.put((rid, result)))

    def _fill(self) -> bool:
        """Starts trials in free slots; False once no trial will start any more.

        Trials that just ended were told without waiting for the database: the Ask here writes them in
        the same group commit (or the explicit commit does), before any new run starts.
        """
        definition = self.manager.definition(self.name_)
        deadline = self.manager.study_attr(self.name_, DEADLINE_ATTR)
        free = definition.parallelism - len(self.active)
        timed_out = deadline is not None and time.time() >= deadline
        if timed_out or free <= 0:
            self.manager.commit()
            return not timed_out
        trials = self.manager.ask(self.name_, free, worker="scheduler")
        for trial in trials:
            self._launch(definition, trial, 0)
        if trials and self.last_end is not None:
            SCHEDULE_LATENCY.observe(time.monotonic() - self.last_end)
            self.last_end = None
        return len(trials) == free or bool(self.active)

    # -- runs ending --------------------------------------------------------------------------------
    def _wait_for_events(self) -> None:
        try:
            event = self.events.get(timeout=self.scheduler.poll_s)
        except queue.Empty:
            return
        while event is not None:
            self._finish(*event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break

    def _finish(self, run_id: str, result: RunResult) -> None:
        number = self.by_run.pop(run_id, None)
        if number is None:
            return
        active = self.active.pop(number)
        self.last_end = time.monotonic()
        definition = self.manager.definition(self.name_)
        if result.status == "succeeded":
            value = metric_value(result.results or [], definition.metric)
            if value is None:
                self._tell(number, TrialState.FAIL, error=f"the task finished without reporting {definition.metric!r}")
            else:
                self._tell(number, TrialState.COMPLETE, value)
        elif result.status == "failed":
            pruned = self.manager.was_pruned(self.name_, number)
            self._tell(number, TrialState.PRUNED if pruned else TrialState.FAIL, error="" if pruned else result.error)
        else:
            self._retry(definition, number, active.retry, f"run {result.status}: {result.error}".rstrip(": "))

    def _retry(self, definition: StudyDefinition, number: int, retry: int, why: str) -> None:
        if retry >= definition.max_retries:
            self._tell(number, TrialState.FAIL, error=f"{why} (gave up after {retry + 1} runs)")
            return
        log.info("study %s: trial %d %s; running it again", self.name_, number, why)
        trial = next(t for t in self.manager.summary(self.name_, trials=True).trials if t.number == number)
        self._launch(definition, trial, retry + 1)

    def _tell(self, number: int, state: TrialState, value: float | None = None, *, error: str = "") -> None:
        try:  # written by the next Ask or commit in _fill: one database round trip per slot refill
            self.manager.tell(self.name_, number, state, value, error=error, wait=False)
        except EhrlabError as exc:
            if isinstance(exc, UnavailableError):
                raise
            log.warning("study %s: trial %d: %s", self.name_, number, exc)

    def _check_silent(self) -> None:
        """Trials whose task stopped reporting for longer than the study allows: cancel and run again."""
        timeout = self.manager.definition(self.name_).heartbeat_timeout_s
        if not timeout:
            return
        now = time.monotonic()
        for number, active in list(self.active.items()):
            silent = now - self.manager.last_heartbeat(self.name_, number)
            if silent > timeout:
                self.by_run.pop(active.run_id, None)
                del self.active[number]
                try:
                    self.runner.cancel(active.run_id, f"no report for {silent:.0f}s")
                except (NotFoundError, UnavailableError) as exc:
                    log.warning("study %s: cancelling silent trial %d: %s", self.name_, number, exc)
                self._retry(self.manager.definition(self.name_), number, active.retry,
                            f"silent for {silent:.0f}s (worker vanished)")


def metric_value(rows: list[dict], metric: str) -> float | None:
    """The objective value in a task's result rows: a column named `metric` (the last row that has one),
    or a row of the long form {"metric": name, "value": v}."""
    for row in reversed(rows):
        value = row.get("value") if row.get("metric") == metric else row.get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None
