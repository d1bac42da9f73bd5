"""Studies: what the hpo-controller does, without gRPC.

A study is defined once (`StudyDefinition`: metric and direction, search space, sampler, pruner,
budget, optionally the objective task) and stored with Optuna's tables. `StudyManager` then serves
Ask (a batch of distinct points), Tell, ReportIntermediate (prune?), heartbeats, summaries and the
top K, with every change in PostgreSQL before it returns.

Asks that arrive while a batch is being sampled wait and are served together by the next batch, so
concurrent askers share one fit of the sampler. A point equal to one already tried is redrawn at
random; a trial that is retried (crash, vanished worker) gets the same parameters, does not count
against the budget, and is bounded by `max_retries`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from pydantic import Field, field_validator, model_validator

from ehrlab.core.config import SpecModel, validate
from ehrlab.core.errors import ConflictError, FailedPreconditionError, NotFoundError, SpecError
from ehrlab.core.hashing import canonical_json
from ehrlab.core.kinds import get_kind
from ehrlab.hpo.algorithms import BatchTPESampler, build_pruner, build_sampler, pruner_config, sampler_config
from ehrlab.hpo.space import SearchSpace, apply_params, params_key
from ehrlab.hpo.storage import StudyCache, ensure_tables

log = logging.getLogger("ehrlab.hpo.studies")
optuna.logging.set_verbosity(optuna.logging.WARNING)

DEFINITION_ATTR = "ehrlab:definition"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_REDRAWS = 32
_PROBES = 16  # random points of the space checked against the objective's parameter model


class ObjectiveSpec(SpecModel):
    """The task each trial runs: a kind, its fixed parameters and inputs; the trial's point is merged in."""

    kind: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)   # as in a pipeline step: a step name or {source: path}
    dataset: str | None = None
    resources: dict[str, Any] | None = None
    timeout_s: float | None = Field(None, gt=0)
    max_attempts: int | None = Field(None, ge=1)
    labels: dict[str, str] = Field(default_factory=dict)


class StudyDefinition(SpecModel):
    name: str = Field(pattern=NAME_PATTERN, max_length=200)
    metric: str = Field(min_length=1)
    direction: Literal["maximize", "minimize"] = "maximize"
    space: dict[str, Any]
    sampler: dict[str, Any] = Field(default_factory=dict)
    pruner: dict[str, Any] = Field(default_factory=dict)
    n_trials: int = Field(0, ge=0)                 # 0: no budget (the caller stops asking)
    parallelism: int = Field(1, ge=1)
    timeout_s: float = Field(0.0, ge=0)            # 0: none; a scheduler stops starting trials after this
    objective: ObjectiveSpec | None = None
    max_retries: int = Field(2, ge=0)              # same-parameter retries of a crashed or vanished trial
    heartbeat_timeout_s: float = Field(0.0, ge=0)  # 0: never fail a trial for silence
    enqueue: list[dict[str, Any]] = Field(default_factory=list)  # points to evaluate first

    @field_validator("space")
    @classmethod
    def _space(cls, value: dict[str, Any]) -> dict[str, Any]:
        return SearchSpace.parse(value).to_dict()

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, value: dict[str, Any]) -> dict[str, Any]:
        return sampler_config(value).model_dump()

    @field_validator("pruner")
    @classmethod
    def _pruner(cls, value: dict[str, Any]) -> dict[str, Any]:
        return pruner_config(value).model_dump()

    @model_validator(mode="after")
    def _bounded(self) -> StudyDefinition:
        if self.objective is not None and not self.n_trials and not self.timeout_s:
            raise ValueError("a study that runs its own trials needs n_trials or timeout_s (or both)")
        return self

    @property
    def identity(self) -> str:
        """What may not change under the same name: metric, direction, space, the objective task."""
        objective = self.objective.model_dump(include={"kind", "params", "inputs", "dataset"}) if self.objective \
            else None
        return canonical_json({"metric": self.metric, "direction": self.direction, "space": self.space,
                               "objective": objective})


def parse_definition(data: Mapping[str, Any], *, source: str = "") -> StudyDefinition:
    """Validates a definition; errors name the key (`space.lr.low`, `pruner.name`, …).

    With an objective, the task kind must exist, report the metric, and accept the objective's
    parameters merged with points of the space (a sample of them and every enqueued point).
    """
    # these parse alone first, so their errors name the parameter or key inside them
    for key, check in (("space", SearchSpace.parse), ("sampler", sampler_config), ("pruner", pruner_config)):
        if isinstance(data.get(key), Mapping):
            check(data[key], path=key, source=source)
    definition = validate(StudyDefinition, dict(data), source=source)
    space = SearchSpace.parse(definition.space)
    for index, point in enumerate(definition.enqueue):
        missing = [name for name, p in space.params.items() if p.active(point) and name not in point]
        extra = [name for name in point if name not in space.params]
        if missing or extra:
            problem = f"missing {missing[0]!r}" if missing else f"{extra[0]!r} is not in the space"
            raise SpecError(f"an enqueued point must set exactly the space's parameters: {problem}",
                            path=f"enqueue[{index}]", source=source)
    if definition.objective is not None:
        _check_objective(definition, space, source)
    return definition


def _check_objective(definition: StudyDefinition, space: SearchSpace, source: str) -> None:
    objective = definition.objective
    assert objective is not None
    kind = get_kind(objective.kind, path="objective.kind", source=source)
    if definition.metric not in kind.metrics:
        reported = ", ".join(kind.metrics) or "none"
        raise SpecError(f"task kind {kind.name!r} never reports {definition.metric!r} (it reports: {reported})",
                        path="metric", source=source)
    sampler = optuna.samplers.RandomSampler(seed=0)
    probe = optuna.create_study(sampler=sampler)
    points = [space.suggest(probe.ask()) for _ in range(_PROBES)] + list(definition.enqueue)
    for point in points:
        try:
            kind.validate_params(apply_params(objective.params, point))
        except SpecError as exc:
            name = next((n for n in sorted(point, key=len, reverse=True)
                         if exc.path == n or exc.path.startswith(f"{n}.")), None)
            where = f"space.{name}" if name else f"objective.params.{exc.path}".rstrip(".")
            raise SpecError(f"{exc.message} (for the point {canonical_json(point)})" if name else exc.message,
                            path=where, source=source) from None


@dataclass
class TrialInfo:
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    started: datetime | None = None
    finished: datetime | None = None

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialInfo:
        params = trial.params or trial.system_attrs.get("fixed_params", {})
        return cls(trial.number, trial.state, dict(params), trial.value, dict(trial.intermediate_values),
                   dict(trial.user_attrs), _aware(trial.datetime_start), _aware(trial.datetime_complete))

    @property
    def error(self) -> str:
        return str(self.user_attrs.get("error", ""))

    @property
    def attempt(self) -> int:
        return int(self.user_attrs.get("attempt", 1))


def _aware(moment: datetime | None) -> datetime | None:
    """Optuna's naive local times as aware ones."""
    return None if moment is None else moment.astimezone(UTC)


@dataclass
class StudySummary:
    definition: StudyDefinition
    counts: dict[str, int]
    best: TrialInfo | None
    trials: list[TrialInfo] = field(default_factory=list)

    @property
    def counted(self) -> int:
        """Trials that use the budget: all but same-parameter retries."""
        return self.counts.get("budgeted", 0)


@dataclass
class _AskWaiter:
    n: int
    trials: list[TrialInfo] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False


class _LiveStudy:
    """A loaded study: the Optuna objects over the cache plus what only lives in memory."""

    def __init__(self, cache: StudyCache, definition: StudyDefinition) -> None:
        self.definition = definition
        self.space = SearchSpace.parse(definition.space)
        self.size = self.space.size()
        self.sampler = build_sampler(sampler_config(definition.sampler))
        self.study = optuna.Study(definition.name, cache.storage, sampler=self.sampler,
                                  pruner=build_pruner(pruner_config(definition.pruner)))
        self.redraw = optuna.Study(definition.name, cache.storage,
                                   sampler=optuna.samplers.RandomSampler(seed=sampler_config(definition.sampler).seed))
        self.cond = threading.Condition()
        self.queue: list[_AskWaiter] = []
        self.sampling = False
        self.heartbeats: dict[int, float] = {}
        trials = self.study.get_trials(deepcopy=False)
        self.used = {params_key(t.params) for t in trials if t.params}
        self.budgeted = sum("retry_of" not in t.user_attrs for t in trials)
        now = time.monotonic()
        for trial in trials:
            if trial.state == TrialState.RUNNING:
                self.heartbeats[trial.number] = now  # after a restart: a full grace period


class StudyManager:
    """Every study of one hpo-controller; thread-safe."""

    def __init__(self, database_url: str, *, reap_interval_s: float = 1.0, retry_deadline_s: float = 60.0) -> None:
        """`retry_deadline_s`: how long a write waits for a lost database before the request fails."""
        self.database_url = database_url
        self.retry_deadline_s = retry_deadline_s
        self.cache = StudyCache(database_url, ensure_tables(database_url), retry_deadline_s=retry_deadline_s)
        self._live: dict[str, _LiveStudy] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, args=(reap_interval_s,), name="hpo-reaper",
                                        daemon=True)
        self._reaper.start()

    # -- studies ---------------------------------------------------------------------------------------
    def _get(self, name: str) -> _LiveStudy:
        with self._lock:
            if self.cache.broken:
                self._reset_cache()
            live = self._live.get(name)
            if live is None:
                study_id = self.cache.load(name)
                data = self.cache.storage.get_study_system_attrs(study_id).get(DEFINITION_ATTR)
                if data is None:
                    raise FailedPreconditionError(f"study {name!r} was not created by ehrlab (no definition)")
                live = self._live[name] = _LiveStudy(self.cache, StudyDefinition.model_validate(data))
            return live

    def _reset_cache(self) -> None:
        """After a failed write: forget everything cached and read the database afresh."""
        log.warning("reloading every study from the database after a failed write")
        self.cache.close()
        self.cache = StudyCache(self.database_url, self.cache.rdb, retry_deadline_s=self.retry_deadline_s)
        self._live.clear()

    def create(self, definition: StudyDefinition) -> StudySummary:
        """Creates the study, or returns the existing one with the same definition.

        The budget, parallelism, timeout, retries, sampler and pruner of an existing study may change
        (re-running with a larger --n-trials resumes it); its metric, direction, space or objective may
        not: that is a different study under a reused name (ConflictError, gRPC ALREADY_EXISTS).
        """
        with self._lock:
            try:
                live = self._get(definition.name)
            except NotFoundError:
                direction = StudyDirection.MAXIMIZE if definition.direction == "maximize" else StudyDirection.MINIMIZE
                self.cache.create(definition.name, direction, {DEFINITION_ATTR: definition.model_dump()})
                live = self._get(definition.name)
                for point in definition.enqueue:
                    live.study.enqueue_trial(point)
                self.cache.commit()
                return self.summary(definition.name)
            if live.definition.identity != definition.identity:
                raise ConflictError(f"study {definition.name!r} already exists with a different "
                                    f"{_difference(live.definition, definition)}; choose another name")
            if live.definition.model_dump() != definition.model_dump():
                stored = definition.model_copy(update={"enqueue": live.definition.enqueue})
                self.cache.storage.set_study_system_attr(live.study._study_id, DEFINITION_ATTR, stored.model_dump())
                self.cache.commit()
                self._live[definition.name] = _LiveStudy(self.cache, stored)
            return self.summary(definition.name)

    def ehrlab_names(self) -> list[str]:
        """Studies created through ehrlab (the schema may hold others, made with plain Optuna)."""
        return sorted(s.study_name for s in self.cache.rdb.get_all_studies() if DEFINITION_ATTR in s.system_attrs)

    def definition(self, name: str) -> StudyDefinition:
        return self._get(name).definition

    # -- ask -------------------------------------------------------------------------------------------
    def ask(self, name: str, n: int = 1, *, worker: str = "") -> list[TrialInfo]:
        """Up to `n` new trials with distinct points (fewer once the budget or a finite space runs out)."""
        if n < 1:
            raise SpecError("n must be at least 1", path="n")
        live = self._get(name)
        waiter = _AskWaiter(n)
        with live.cond:
            live.queue.append(waiter)
            while not waiter.done:
                if live.sampling:
                    live.cond.wait()
                    continue
                live.sampling, batch, live.queue = True, live.queue, []
                live.cond.release()
                try:
                    self._sample_batch(live, batch, worker)
                except BaseException as exc:
                    for other in batch:
                        other.error = exc
                finally:
                    live.cond.acquire()
                    live.sampling = False
                    for other in batch:
                        other.done = True
                    live.cond.notify_all()
        if waiter.error is not None:
            raise waiter.error
        self.cache.commit()
        return waiter.trials

    def _sample_batch(self, live: _LiveStudy, batch: list[_AskWaiter], worker: str) -> None:
        wanted = sum(w.n for w in batch)
        budget = live.definition.n_trials
        storage, study_id = self.cache.storage, live.study._study_id
        made: list[TrialInfo] = []
        batch_context = live.sampler.batch(wanted) if isinstance(live.sampler, BatchTPESampler) else nullcontext()
        with self.cache.holding(), batch_context:
            while len(made) < wanted:
                waiting = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,))
                fresh = not waiting
                if fresh and budget and live.budgeted >= budget:
                    break
                if fresh and live.size <= len(live.used):
                    break  # a finite space with every point tried
                trial = live.study.ask()
                params = live.space.suggest(trial)
                if fresh and params_key(params) in live.used:
                    params = self._redraw(live, trial._trial_id)
                    if params is None:
                        storage.set_trial_user_attr(trial._trial_id, "error", "no untried point found")
                        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
                        live.budgeted += 1
                        continue
                live.used.add(params_key(params))
                frozen = storage.get_trial(trial._trial_id)
                if "retry_of" not in frozen.user_attrs:
                    live.budgeted += 1
                if worker:
                    storage.set_trial_user_attr(trial._trial_id, "worker", worker)
                live.heartbeats[trial.number] = time.monotonic()
                made.append(TrialInfo.of(storage.get_trial(trial._trial_id)))
        for waiter in batch:
            waiter.trials, made = made[:waiter.n], made[waiter.n:]

    def _redraw(self, live: _LiveStudy, trial_id: int) -> dict[str, Any] | None:
        """Samples the trial again at random until its point is new (a sampler proposed a tried one)."""
        for _ in range(_REDRAWS):
            self.cache.storage.clear_params(trial_id)
            params = live.space.suggest(optuna.Trial(live.redraw, trial_id))
            if params_key(params) not in live.used:
                return params
        return None

    # -- tell, report, heartbeat -------------------------------------------------------------------------
    def _trial(self, live: _LiveStudy, number: int) -> FrozenTrial:
        try:
            trial_id = self.cache.storage.get_trial_id_from_study_id_trial_number(live.study._study_id, number)
        except KeyError:
            raise NotFoundError(f"study {live.definition.name!r} has no trial {number}") from None
        return self.cache.storage.get_trial(trial_id)

    def tell(self, name: str, number: int, state: TrialState, value: float | None = None, *, error: str = "",
             retry: bool = False, attrs: Mapping[str, Any] | None = None, wait: bool = True) -> TrialInfo:
        """Finishes a trial. Telling a finished trial the state it already has is a no-op (retried RPCs).

        With `retry`, a failed trial is followed by a new trial with the same parameters while
        `max_retries` allows; the new trial is handed out by the next Ask before any fresh point.
        `wait=False` returns before the write (the caller's next commit covers it: see `commit`).
        """
        live = self._get(name)
        trial = self._trial(live, number)
        storage = self.cache.storage
        if state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
            raise SpecError(f"a trial is told COMPLETE, PRUNED or FAIL, not {state.name}", path="state")
        if trial.state.is_finished():
            if trial.state == state:
                return TrialInfo.of(trial)
            raise FailedPreconditionError(f"trial {number} of {name!r} already finished as {trial.state.name}")
        if state == TrialState.COMPLETE and (value is None or not math.isfinite(value)):
            raise SpecError(f"a COMPLETE trial needs a finite value (got {value})", path="value")
        for key, item in (attrs or {}).items():
            storage.set_trial_user_attr(trial._trial_id, key, item)
        if error:
            storage.set_trial_user_attr(trial._trial_id, "error", error[:4000])
        # a pruned trial's value is its last intermediate value (Optuna's rule), a failed one has none
        live.study.tell(trial.number, value if state == TrialState.COMPLETE else None, state=state)
        live.heartbeats.pop(number, None)
        if state == TrialState.FAIL and retry:
            self._enqueue_retry(live, storage.get_trial(trial._trial_id))
        if wait:
            self.cache.commit()
        return TrialInfo.of(storage.get_trial(trial._trial_id))

    def commit(self) -> None:
        """Returns once every change made so far (by any caller) is in PostgreSQL."""
        self.cache.commit()

    def _enqueue_retry(self, live: _LiveStudy, trial: FrozenTrial) -> bool:
        attempt = int(trial.user_attrs.get("attempt", 1))
        if attempt > live.definition.max_retries:
            return False
        original = trial.user_attrs.get("retry_of", trial.number)
        live.study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": original, "attempt": attempt + 1})
        return True

    def report(self, name: str, number: int, step: int, value: float) -> bool:
        """Records an intermediate value; True when the pruner says the trial should stop."""
        live = self._get(name)
        trial = self._trial(live, number)
        if trial.state != TrialState.RUNNING:
            raise FailedPreconditionError(f"trial {number} of {name!r} is {trial.state.name}, not running")
        if step < 0:
            raise SpecError("step must be 0 or more", path="step")
        live.heartbeats[number] = time.monotonic()
        if step not in trial.intermediate_values:  # a repeated report (a retried RPC) keeps the first value
            self.cache.storage.set_trial_intermediate_value(trial._trial_id, step, float(value))
        prune = bool(live.study.pruner.prune(live.study, self.cache.storage.get_trial(trial._trial_id)))
        if prune:
            self.cache.storage.set_trial_user_attr(trial._trial_id, "pruned_at_step", step)
        self.cache.commit()
        return prune

    def was_pruned(self, name: str, number: int) -> bool:
        """Whether the study told this trial to stop (its task then fails with exit code 3)."""
        return "pruned_at_step" in self._trial(self._get(name), number).user_attrs

    def last_heartbeat(self, name: str, number: int) -> float:
        """time.monotonic() of the trial's last sign of life (Ask, ReportIntermediate, Heartbeat)."""
        return self._get(name).heartbeats.get(number, time.monotonic())

    def set_trial_attrs(self, name: str, number: int, attrs: Mapping[str, Any], *, wait: bool = True) -> None:
        """Records attributes with a running trial; `wait=False` for what may be lost in a crash (it is
        written with the next group commit, without holding the caller up)."""
        live = self._get(name)
        trial = self._trial(live, number)
        for key, value in attrs.items():
            self.cache.storage.set_trial_user_attr(trial._trial_id, key, value)
        if wait:
            self.cache.commit()

    def set_study_attr(self, name: str, key: str, value: Any) -> None:
        self.cache.storage.set_study_system_attr(self._get(name).study._study_id, key, value)
        self.cache.commit()

    def study_attr(self, name: str, key: str) -> Any:
        return self.cache.storage.get_study_system_attrs(self._get(name).study._study_id).get(key)

    def heartbeat(self, name: str, number: int) -> None:
        live = self._get(name)
        trial = self._trial(live, number)
        if trial.state != TrialState.RUNNING:
            raise FailedPreconditionError(f"trial {number} of {name!r} is {trial.state.name}, not running")
        live.heartbeats[number] = time.monotonic()

    def _reap_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.reap()
            except Exception:
                log.exception("failing stale trials")

    def reap(self) -> list[tuple[str, int]]:
        """Fails (and retries, within bounds) running trials silent for longer than their study allows."""
        reaped = []
        with self._lock:
            studies = list(self._live.values())
        now = time.monotonic()
        for live in studies:
            timeout = live.definition.heartbeat_timeout_s
            if not timeout or live.definition.objective is not None:  # the scheduler watches its own trials
                continue
            for number, seen in list(live.heartbeats.items()):
                if now - seen > timeout:
                    try:
                        self.tell(live.definition.name, number, TrialState.FAIL, retry=True,
                                  error=f"worker vanished: no heartbeat for {now - seen:.0f}s")
                    except FailedPreconditionError:
                        live.heartbeats.pop(number, None)
                        continue
                    reaped.append((live.definition.name, number))
        return reaped

    # -- reading ---------------------------------------------------------------------------------------
    def summary(self, name: str, *, trials: bool = False) -> StudySummary:
        live = self._get(name)
        all_trials = live.study.get_trials(deepcopy=False)
        counts = _state_counts(all_trials)
        counts["budgeted"] = live.budgeted
        best = self.top_k(name, 1)
        return StudySummary(live.definition, counts, best[0] if best else None,
                            [TrialInfo.of(t) for t in all_trials] if trials else [])

    def loaded_trial_counts(self) -> dict[str, dict[str, int]]:
        """Trials by state (running, complete, pruned, fail, waiting) of every study this process has
        loaded, from memory: cheap enough for every metrics scrape."""
        with self._lock:
            loaded = list(self._live.items())
        return {name: _state_counts(live.study.get_trials(deepcopy=False)) for name, live in loaded}

    def top_k(self, name: str, k: int) -> list[TrialInfo]:
        if k < 1:
            raise SpecError("k must be at least 1", path="k")
        live = self._get(name)
        done = live.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        done.sort(key=lambda t: (-t.value if live.definition.direction == "maximize" else t.value, t.number))
        return [TrialInfo.of(t) for t in done[:k]]

    def close(self) -> None:
        self._stop.set()
        self._reaper.join(timeout=5)
        self.cache.close()
        self.cache.rdb.engine.dispose()


def _state_counts(trials: list[FrozenTrial]) -> dict[str, int]:
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in trials:
        counts[trial.state.name.lower()] += 1
    return counts


def _difference(old: StudyDefinition, new: StudyDefinition) -> str:
    for key in ("metric", "direction", "space", "objective"):
        if canonical_json(old.model_dump().get(key)) != canonical_json(new.model_dump().get(key)):
            return key
    return "definition"

