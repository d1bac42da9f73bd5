"""Optuna studies kept in memory and written through to Optuna's own tables in PostgreSQL.

The tables are the ones `optuna.storages.RDBStorage` creates, in the schema `hpo`, so the
optuna-dashboard and plain Optuna open them unchanged (`optuna_url`). What differs from RDBStorage
is how they are used:

- Reads never touch the database: the study's trials live in an `InMemoryStorage` that is loaded from
  the tables once (through RDBStorage itself, so the schema is read exactly as Optuna reads it).
- Writes are group-committed: every change marks its trial dirty; `commit()` returns once a writer
  thread has written every change made before the call, in one transaction together with whatever
  other requests changed meanwhile. Nothing is acknowledged before it is in PostgreSQL.
- If a write fails, the whole cache is thrown away (`CacheBroken`) and the next request reloads from
  the database, which then holds exactly the acknowledged state.

One process serves a study at a time: loading a study takes a PostgreSQL advisory lock held on a
dedicated connection, released when the process closes the store or dies.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import optuna
import psycopg
from optuna.distributions import distribution_to_json
from optuna.storages import InMemoryStorage, RDBStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from ehrlab.core.db import Database
from ehrlab.core.errors import FailedPreconditionError, NotFoundError, UnavailableError

log = logging.getLogger("ehrlab.hpo.storage")
SCHEMA = "hpo"
_LOCK_SPACE = 0x6870  # advisory lock key space of hpo studies ("hp")


def optuna_url(database_url: str, schema: str = SCHEMA) -> str:
    """The SQLAlchemy URL of the study tables: what RDBStorage and optuna-dashboard are given."""
    parts = urlsplit(database_url)
    scheme = "postgresql+psycopg" if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg") else parts.scheme
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def ensure_tables(database_url: str, schema: str = SCHEMA) -> RDBStorage:
    """Creates the schema and Optuna's tables in it (idempotent); returns an RDBStorage on them."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s, 0)", (_LOCK_SPACE,))  # concurrent first starts
        try:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            storage = RDBStorage(optuna_url(database_url, schema), engine_kwargs={"pool_pre_ping": True})
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, 0)", (_LOCK_SPACE,))
    return storage


class CacheBroken(UnavailableError):
    """A write to PostgreSQL failed: the cached studies were dropped; retry the request."""


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def _same(a: float | None, b: float) -> bool:
    return a == b or (a is not None and a != a and b != b)  # NaN is a value like any other here


def _value_repr(value: float) -> tuple[float | None, str]:
    if value != value:
        return None, "NAN"
    if value in (float("inf"), float("-inf")):
        return None, "INF_POS" if value > 0 else "INF_NEG"
    return value, "FINITE"


class _TrackingStorage(InMemoryStorage):
    """InMemoryStorage that remembers which trials and studies changed since the last write."""

    def __init__(self, on_change: Any) -> None:
        super().__init__()
        self._on_change = on_change
        self.study_of_trial: dict[int, int] = {}

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        self.study_of_trial[trial_id] = study_id
        self._on_change(trial_id=trial_id)
        return trial_id

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: optuna.distributions.BaseDistribution) -> None:
        super().set_trial_param(trial_id, param_name, param_value_internal, distribution)
        self._on_change(trial_id=trial_id)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        changed = super().set_trial_state_values(trial_id, state, values)
        self._on_change(trial_id=trial_id)
        return changed

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        super().set_trial_intermediate_value(trial_id, step, intermediate_value)
        self._on_change(trial_id=trial_id)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        super().set_trial_user_attr(trial_id, key, value)
        self._on_change(trial_id=trial_id)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        super().set_trial_system_attr(trial_id, key, value)
        self._on_change(trial_id=trial_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        super().set_study_user_attr(study_id, key, value)
        self._on_change(study_id=study_id)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        super().set_study_system_attr(study_id, key, value)
        self._on_change(study_id=study_id)

    def clear_params(self, trial_id: int) -> None:
        """Forgets a not yet written trial's parameters, so it can be sampled again."""
        with self._lock:
            trial = copy.copy(self._get_trial(trial_id))
            trial.params, trial.distributions = {}, {}
            trial.system_attrs = {k: v for k, v in trial.system_attrs.items() if not k.startswith("tpe:")}
            self._set_trial(trial_id, trial)

    def load_trial(self, study_id: int, trial: FrozenTrial) -> int:
        """Adds a trial read from the database without marking it changed."""
        trial_id = InMemoryStorage.create_new_trial(self, study_id, trial)
        self.study_of_trial[trial_id] = study_id
        return trial_id


@dataclass
class _Persisted:
    """What the database holds for one cached trial (to write only what changed)."""

    db_id: int
    trial: FrozenTrial


class StudyCache:
    """The cached studies of one process and their write-through to PostgreSQL.

    `storage` is an Optuna storage: build `optuna.Study(name, storage, sampler, pruner)` on it and use
    Optuna as usual, then call `commit()` before acknowledging anything.
    """

    def __init__(self, database_url: str, rdb: RDBStorage, *, schema: str = SCHEMA,
                 retry_deadline_s: float = 60.0) -> None:
        self.rdb = rdb
        self.db = Database(database_url, schema=schema, max_size=2, application="hpo-controller",
                           retry_deadline_s=retry_deadline_s).open()
        self.storage = _TrackingStorage(self._changed)
        self._lock = threading.RLock()           # guards the bookkeeping below (and is held while copying)
        self._cond = threading.Condition(self._lock)
        self._seq = 0                            # changes made so far
        self._written = 0                        # changes known to be in the database
        self._dirty_trials: set[int] = set()
        self._dirty_studies: set[int] = set()
        self._held: set[int] = set()              # trials being built: not written until released
        self._local = threading.local()
        self._persisted: dict[int, _Persisted] = {}   # memory trial id -> database state
        self._study_db_id: dict[int, int] = {}        # memory study id -> database study id
        self._study_attrs: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._broken: Exception | None = None
        self._closed = False
        self._owner = psycopg.connect(database_url, autocommit=True)  # holds the studies' advisory locks
        self._writer = threading.Thread(target=self._write_loop, name="hpo-writer", daemon=True)
        self._writer.start()

    # -- loading ---------------------------------------------------------------------------------------
    def load(self, name: str) -> int:
        """The memory id of study `name`, loading it from the database on first use."""
        with self._lock:
            self._check()
            try:
                return self.storage.get_study_id_from_name(name)
            except KeyError:
                pass
            try:
                db_study_id = self.rdb.get_study_id_from_name(name)
            except KeyError:
                raise NotFoundError(f"no study named {name!r}") from None
            locked = self._owner.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                         (_LOCK_SPACE, db_study_id)).fetchone()[0]
            if not locked:
                raise FailedPreconditionError(f"study {name!r} is being served by another hpo-controller")
            study_id = self.storage.create_new_study(self.rdb.get_study_directions(db_study_id), name)
            system = self.rdb.get_study_system_attrs(db_study_id)
            user = self.rdb.get_study_user_attrs(db_study_id)
            for key, value in system.items():
                InMemoryStorage.set_study_system_attr(self.storage, study_id, key, value)
            for key, value in user.items():
                InMemoryStorage.set_study_user_attr(self.storage, study_id, key, value)
            self._study_db_id[study_id] = db_study_id
            self._study_attrs[study_id] = (dict(system), dict(user))
            for number, trial in enumerate(sorted(self.rdb.get_all_trials(db_study_id, deepcopy=False),
                                                  key=lambda t: t.number)):
                if trial.number != number:
                    raise FailedPreconditionError(f"study {name!r}: trial numbers in the database have a gap "
                                                  f"at {number}")
                trial_id = self.storage.load_trial(study_id, trial)
                self._persisted[trial_id] = _Persisted(trial._trial_id, self.storage.get_trial(trial_id))
            return study_id

    def create(self, name: str, direction: StudyDirection, system_attrs: dict[str, Any]) -> int:
        """Creates the study in the database (its attributes in the same step) and loads it."""
        with self._lock:
            self._check()
            db_study_id = self.rdb.create_new_study([direction], name)
            for key, value in system_attrs.items():
                self.rdb.set_study_system_attr(db_study_id, key, value)
            return self.load(name)

    # -- writing ---------------------------------------------------------------------------------------
    @contextmanager
    def holding(self) -> Iterator[set[int]]:
        """Trials this thread creates inside the block are written only after it (all or none visible)."""
        held: set[int] = set()
        self._local.held = held
        try:
            yield held
        finally:
            self._local.held = None
            with self._lock:
                self._held -= held
                self._seq += 1
                self._dirty_trials |= held

    def _changed(self, *, trial_id: int | None = None, study_id: int | None = None) -> None:
        with self._lock:
            self._seq += 1
            if trial_id is not None:
                held = getattr(self._local, "held", None)
                if held is not None and trial_id not in self._persisted:
                    held.add(trial_id)
                    self._held.add(trial_id)
                self._dirty_trials.add(trial_id)
            if study_id is not None:
                self._dirty_studies.add(study_id)

    def commit(self, timeout: float = 60.0) -> None:
        """Returns once every change made before this call is in PostgreSQL; raises CacheBroken if not."""
        with self._cond:
            target = self._seq
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._written >= target or self._broken is not None or self._closed,
                                       timeout):
                raise UnavailableError("the study database did not acknowledge the write in time")
            if self._written < target:
                self._check()
                raise UnavailableError("the hpo-controller is shutting down")

    @property
    def broken(self) -> bool:
        return self._broken is not None

    def _check(self) -> None:
        if self._broken is not None:
            raise CacheBroken(f"a write to the study database failed ({self._broken}); retry")
        if self._closed:
            raise UnavailableError("the study cache is closed")

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._seq > self._written or self._closed)
                if self._closed and self._seq == self._written:
                    return
                upto = self._seq
                ready = self._dirty_trials - self._held
                trials = [(tid, self.storage.get_trial(tid), self._study_of(tid)) for tid in sorted(ready)]
                studies = [(sid, self.storage.get_study_system_attrs(sid), self.storage.get_study_user_attrs(sid))
                           for sid in sorted(self._dirty_studies)]
                self._dirty_trials, self._dirty_studies = self._dirty_trials & self._held, set()
            try:
                created = self.db.run(partial(self._write, trials=trials, studies=studies))
            except Exception as exc:  # the database is gone beyond the retry deadline, or a bug: start over
                log.error("writing %d trials failed: %s", len(trials), exc)
                with self._cond:
                    self._broken = exc
                    self._cond.notify_all()
                return
            with self._cond:
                for trial_id, trial, _ in trials:
                    db_id = created.get(trial_id) or self._persisted[trial_id].db_id
                    self._persisted[trial_id] = _Persisted(db_id, trial)
                for study_id, system, user in studies:
                    self._study_attrs[study_id] = (dict(system), dict(user))
                self._written = upto
                self._cond.notify_all()

    def _study_of(self, trial_id: int) -> int:
        return self._study_db_id[self.storage.study_of_trial[trial_id]]

    def _write(self, conn: psycopg.Connection[Any], trials: list[tuple[int, FrozenTrial, int]],
               studies: list[tuple[int, dict[str, Any], dict[str, Any]]]) -> dict[int, int]:
        """One transaction: inserts new trials, then everything that differs from the database."""
        new = [(tid, t, sid) for tid, t, sid in trials if tid not in self._persisted]
        created: dict[int, int] = {}
        if new:
            rows = conn.execute(
                "INSERT INTO trials (number, study_id, state, datetime_start, datetime_complete) "
                "SELECT * FROM unnest(%s::int[], %s::int[], %s::trialstate[], %s::timestamp[], %s::timestamp[]) "
                "RETURNING trial_id, study_id, number",
                ([t.number for _, t, _ in new], [sid for _, _, sid in new], [t.state.name for _, t, _ in new],
                 [_utc(t.datetime_start) for _, t, _ in new], [_utc(t.datetime_complete) for _, t, _ in new]),
            ).fetchall()
            by_number = {(r["study_id"], r["number"]): r["trial_id"] for r in rows}
            created = {tid: by_number[(sid, t.number)] for tid, t, sid in new}
        updates, params, values, steps, user_attrs, system_attrs = [], [], [], [], [], []
        for tid, trial, _ in trials:
            known = self._persisted.get(tid)
            db_id = created.get(tid) or known.db_id  # type: ignore[union-attr]
            old = known.trial if known else None
            if old is not None and (old.state, old.datetime_start, old.datetime_complete) != (
                    trial.state, trial.datetime_start, trial.datetime_complete):
                updates.append((trial.state.name, _utc(trial.datetime_start), _utc(trial.datetime_complete), db_id))
            for name, value in trial.params.items():
                if old is None or old.params.get(name, object()) != value:
                    dist = trial.distributions[name]
                    params.append((db_id, name, dist.to_internal_repr(value), distribution_to_json(dist)))
            for objective, value in enumerate(trial.values or ()):
                if old is None or (old.values or [])[objective:objective + 1] != [value]:
                    values.append((db_id, objective, *_value_repr(value)))
            for step, value in trial.intermediate_values.items():
                if old is None or not _same(old.intermediate_values.get(step), value):
                    steps.append((db_id, step, *_value_repr(value)))
            for target, current, before in ((user_attrs, trial.user_attrs, old.user_attrs if old else {}),
                                            (system_attrs, trial.system_attrs, old.system_attrs if old else {})):
                target.extend((db_id, k, json.dumps(v)) for k, v in current.items() if before.get(k, object()) != v)
        with conn.cursor() as cur:
            if updates:
                cur.executemany("UPDATE trials SET state = %s::trialstate, datetime_start = %s, "
                                "datetime_complete = %s WHERE trial_id = %s", updates)
            if params:
                cur.executemany("INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) "
                                "VALUES (%s, %s, %s, %s) ON CONFLICT (trial_id, param_name) DO UPDATE SET "
                                "param_value = EXCLUDED.param_value, distribution_json = EXCLUDED.distribution_json",
                                params)
            if values:
                cur.executemany("INSERT INTO trial_values (trial_id, objective, value, value_type) "
                                "VALUES (%s, %s, %s, %s::trialvaluetype) ON CONFLICT (trial_id, objective) DO UPDATE "
                                "SET value = EXCLUDED.value, value_type = EXCLUDED.value_type", values)
            if steps:
                cur.executemany("INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, "
                                "intermediate_value_type) VALUES (%s, %s, %s, %s::trialintermediatevaluetype) "
                                "ON CONFLICT (trial_id, step) DO UPDATE SET intermediate_value = "
                                "EXCLUDED.intermediate_value, intermediate_value_type = "
                                "EXCLUDED.intermediate_value_type", steps)
            for table, rows in (("trial_user_attributes", user_attrs), ("trial_system_attributes", system_attrs)):
                if rows:
                    cur.executemany(f"INSERT INTO {table} (trial_id, key, value_json) VALUES (%s, %s, %s) "
                                    "ON CONFLICT (trial_id, key) DO UPDATE SET value_json = EXCLUDED.value_json", rows)
            for study_id, system, user in studies:
                old_system, old_user = self._study_attrs.get(study_id, ({}, {}))
                db_study = self._study_db_id[study_id]
                for table, current, before in (("study_system_attributes", system, old_system),
                                               ("study_user_attributes", user, old_user)):
                    rows = [(db_study, k, json.dumps(v)) for k, v in current.items() if before.get(k, object()) != v]
                    if rows:
                        cur.executemany(f"INSERT INTO {table} (study_id, key, value_json) VALUES (%s, %s, %s) "
                                        "ON CONFLICT (study_id, key) DO UPDATE SET value_json = EXCLUDED.value_json",
                                        rows)
        return created

    def close(self) -> None:
        """Writes what is pending, stops the writer, releases the studies' locks."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._writer.join(timeout=30)
        self.db.close()
        self._owner.close()
