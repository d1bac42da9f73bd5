"""All SQL of the controller's schema: the engine's durable state and the servicer's queries."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ehrlab.core.db import Database
from ehrlab.core.errors import SpecError
from ehrlab.core.kinds import Resources
from ehrlab.engine.model import EXP_PENDING, EXP_RUNNING, ExperimentRecord, TaskRecord

_TASK_COLUMNS = ("id", "experiment_id", "seq", "name", "kind", "key", "dataset", "service", "code_version",
                 "params", "inputs", "depends_on", "resources", "timeout_s", "max_attempts", "labels", "forced",
                 "skip", "state", "attempts", "launches", "error", "output_digest", "output_size", "results_done",
                 "created_at", "started_at", "finished_at")
_JSON_COLUMNS = {"params", "inputs", "resources", "labels"}


def open_database(url: str, **kwargs: Any) -> Database:
    db = Database(url, schema="controller", application="ehrlab-controller", **kwargs).open()
    db.migrate("ehrlab.engine")
    return db


def _task_row(task: TaskRecord) -> tuple[Any, ...]:
    values = []
    for column in _TASK_COLUMNS:
        value = task.resources.model_dump() if column == "resources" else getattr(task, column)
        values.append(json.dumps(value) if column in _JSON_COLUMNS else value)
    return tuple(values)


def insert_experiment(db: Database, exp: ExperimentRecord, spec_hash: str) -> tuple[str, str]:
    """Stores a new experiment with all its tasks in one transaction.

    Returns (id, spec_hash) of the experiment holding this request id: the new one, or the one a
    previous call with the same request id created (nothing is written then).
    """
    def write(conn: psycopg.Connection[Any]) -> tuple[str, str]:
        row = conn.execute(
            "INSERT INTO experiments (id, name, request_id, spec_hash, planner, spec, options, labels, state, "
            "counts, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (request_id) DO NOTHING RETURNING id",
            (exp.id, exp.name, exp.request_id, spec_hash, exp.planner, Jsonb(exp.spec), Jsonb(exp.options),
             Jsonb(exp.labels), exp.state, Jsonb(exp.counts_dict()), exp.created_at)).fetchone()
        if row is None:
            existing = conn.execute("SELECT id, spec_hash FROM experiments WHERE request_id = %s",
                                    (exp.request_id,)).fetchone()
            return existing["id"], existing["spec_hash"]
        with conn.cursor().copy(f"COPY tasks ({', '.join(_TASK_COLUMNS)}) FROM STDIN") as copy:
            for task in exp.tasks.values():
                copy.write_row(_task_row(task))
        return exp.id, spec_hash

    return db.run(write)


def task_from_row(row: dict[str, Any]) -> TaskRecord:
    fields = {column: row[column] for column in _TASK_COLUMNS}
    fields["resources"] = Resources.model_validate(row["resources"])
    fields["depends_on"] = list(row["depends_on"])
    fields["not_before"] = row["not_before"]
    return TaskRecord(**fields)


def experiment_from_row(row: dict[str, Any]) -> ExperimentRecord:
    return ExperimentRecord(
        id=row["id"], name=row["name"], request_id=row["request_id"], planner=row["planner"], spec=row.get("spec", {}),
        options=row["options"], labels=row["labels"], state=row["state"], cancel_requested=row["cancel_requested"],
        error=row["error"], created_at=row["created_at"], started_at=row["started_at"],
        finished_at=row["finished_at"])


def load_active(db: Database) -> tuple[list[ExperimentRecord], list[dict[str, Any]]]:
    """Active experiments with all their tasks, and the attempts still open."""
    def read(conn: psycopg.Connection[Any]) -> tuple[list[ExperimentRecord], list[dict[str, Any]]]:
        experiments = {r["id"]: experiment_from_row(r) for r in conn.execute(
            "SELECT * FROM experiments WHERE state IN (%s, %s) ORDER BY created_at", (EXP_PENDING, EXP_RUNNING))}
        if not experiments:
            return [], []
        ids = list(experiments)
        for row in conn.execute("SELECT * FROM tasks WHERE experiment_id = ANY(%s) ORDER BY experiment_id, seq",
                                (ids,)):
            task = task_from_row(row)
            experiments[task.experiment_id].tasks[task.name] = task
        attempts = conn.execute(
            "SELECT a.* FROM attempts a JOIN tasks t ON t.id = a.task_id "
            "WHERE t.experiment_id = ANY(%s) AND a.state = 'running'", (ids,)).fetchall()
        return list(experiments.values()), attempts

    experiments, attempts = db.run(read)
    for exp in experiments:
        exp.index()
    return experiments, attempts


def flush(db: Database, *, tasks: Iterable[TaskRecord] = (), new_attempts: Iterable[dict[str, Any]] = (),
          attempt_updates: Iterable[dict[str, Any]] = (), experiments: Iterable[ExperimentRecord] = (),
          rekeyed: Iterable[TaskRecord] = ()) -> None:
    """Writes a tick's changes in one transaction (retried as a whole if the connection drops)."""
    task_rows = [(t.state, t.attempts, t.launches, t.not_before, t.error, t.output_digest, t.output_size,
                  t.results_done, t.started_at, t.finished_at, t.id) for t in tasks]
    exp_rows = [(e.state, e.cancel_requested, e.error, Jsonb(e.counts_dict()), e.started_at, e.finished_at, e.id)
                for e in experiments]
    new_rows = [(a["id"], a["task_id"], a["number"], a["state"], a["launcher"], Jsonb(a["handle"]))
                for a in new_attempts]
    finished = [e.id for e in experiments if e.finished_at is not None]
    upd_rows = [(a["state"], Jsonb(a.get("handle", {})), a.get("message", ""), a.get("exit_code"),
                 a.get("finished_at"), a["id"]) for a in attempt_updates]
    rekey_rows = [(t.key, json.dumps(t.inputs), t.depends_on, t.id) for t in rekeyed]
    if not (task_rows or exp_rows or new_rows or upd_rows or rekey_rows):
        return

    def write(conn: psycopg.Connection[Any]) -> None:
        with conn.cursor() as cur:
            if new_rows:
                cur.executemany("INSERT INTO attempts (id, task_id, number, state, launcher, handle) "
                                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING", new_rows)
            if rekey_rows:
                cur.executemany("UPDATE tasks SET key = %s, inputs = %s, depends_on = %s WHERE id = %s", rekey_rows)
            if task_rows:
                cur.executemany("UPDATE tasks SET state = %s, attempts = %s, launches = %s, not_before = %s, "
                                "error = %s, output_digest = %s, output_size = %s, results_done = %s, "
                                "started_at = %s, finished_at = %s WHERE id = %s", task_rows)
            if upd_rows:
                cur.executemany("UPDATE attempts SET state = %s, handle = handle || %s, message = %s, "
                                "exit_code = %s, finished_at = %s WHERE id = %s", upd_rows)
            if exp_rows:
                cur.executemany("UPDATE experiments SET state = %s, cancel_requested = %s, error = %s, counts = %s, "
                                "started_at = %s, finished_at = %s WHERE id = %s", exp_rows)
            if finished:  # their results were all forwarded (an experiment only finishes then)
                cur.execute("UPDATE tasks SET results_done = true WHERE experiment_id = ANY(%s) AND NOT results_done "
                            "AND state IN (4, 5)", (finished,))

    db.run(write)


def request_cancel(db: Database, experiment_id: str) -> bool:
    row = db.fetch_one("UPDATE experiments SET cancel_requested = true WHERE id = %s AND state IN (%s, %s) "
                       "RETURNING id", (experiment_id, EXP_PENDING, EXP_RUNNING))
    return row is not None


def mark_results_done(db: Database, task_ids: list[str]) -> None:
    if task_ids:
        db.execute("UPDATE tasks SET results_done = true WHERE id = ANY(%s)", (task_ids,))


# --- reads for the servicer -------------------------------------------------------------------------

def encode_token(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode()


def decode_token(token: str) -> list[Any]:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise SpecError("malformed page token", path="page.page_token") from None


_SUMMARY_COLUMNS = ("id, name, request_id, planner, options, labels, state, cancel_requested, error, counts, "
                    "created_at, started_at, finished_at")  # all but the spec


def get_experiment_row(db: Database, id_or_name: str) -> dict[str, Any] | None:
    return db.fetch_one("SELECT * FROM experiments WHERE id = %s OR name = %s "
                        "ORDER BY (id = %s) DESC, created_at DESC LIMIT 1", (id_or_name, id_or_name, id_or_name))


def list_experiment_rows(db: Database, *, states: list[int], labels: dict[str, str], name_prefix: str,
                         page_size: int, page_token: str, with_spec: bool = True) -> tuple[list[dict[str, Any]], str]:
    clauses, params = ["true"], []
    if states:
        clauses.append("state = ANY(%s)")
        params.append(states)
    if labels:
        clauses.append("labels @> %s")
        params.append(Jsonb(labels))
    if name_prefix:
        clauses.append("name LIKE %s")
        params.append(name_prefix.replace("%", r"\%").replace("_", r"\_") + "%")
    if page_token:
        created, ident = decode_token(page_token)
        clauses.append("(created_at, id) < (%s::timestamptz, %s)")
        params += [created, ident]
    columns = "*" if with_spec else _SUMMARY_COLUMNS
    rows = db.fetch_all(f"SELECT {columns} FROM experiments WHERE {' AND '.join(clauses)} "
                        f"ORDER BY created_at DESC, id DESC LIMIT %s", [*params, page_size + 1])
    token = ""
    if len(rows) > page_size:
        rows = rows[:page_size]
        token = encode_token([rows[-1]["created_at"].isoformat(), rows[-1]["id"]])
    return rows, token


def list_task_rows(db: Database, experiment_id: str, *, states: list[int], kind: str, page_size: int,
                   page_token: str) -> tuple[list[dict[str, Any]], str]:
    clauses, params = ["experiment_id = %s"], [experiment_id]
    if states:
        clauses.append("state = ANY(%s)")
        params.append(states)
    if kind:
        clauses.append("kind = %s")
        params.append(kind)
    if page_token:
        clauses.append("seq > %s")
        params.append(int(decode_token(page_token)[0]))
    rows = db.fetch_all(f"SELECT * FROM tasks WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT %s",
                        [*params, page_size + 1])
    token = ""
    if len(rows) > page_size:
        rows = rows[:page_size]
        token = encode_token([rows[-1]["seq"]])
    return rows, token


def get_task_row(db: Database, task_id: str) -> dict[str, Any] | None:
    return db.fetch_one("SELECT * FROM tasks WHERE id = %s", (task_id,))


def now() -> datetime:
    return datetime.now(UTC)
