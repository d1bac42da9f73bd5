"""SQL of the result-store: idempotent writes (bulk through COPY) and paginated, filtered reads."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ehrlab.core.db import Database
from ehrlab.core.errors import SpecError

RESULTS, METRICS = "results", "metrics"
# TaskState values that mean a task is over (succeeded, cached, failed, skipped, cancelled)
FINISHED_STATES = (4, 5, 6, 7, 8)


def open_database(url: str, **kwargs: Any) -> Database:
    db = Database(url, schema="results", application="ehrlab-result-store", **kwargs).open()
    db.migrate("ehrlab.results")
    return db


@dataclass
class Status:
    task_id: str
    experiment_id: str
    task_name: str
    kind: str
    state: int
    attempt: int
    message: str
    progress: float
    cache_hit: bool
    sequence: int
    updated_at: datetime


# one metric point as COPY writes it: experiment_id, task_id, kind, attempt, name, step, value, time, labels (JSON)
MetricRow = tuple[str, str, str, int, str, int, float, datetime, str]


def upsert_statuses(db: Database, statuses: Sequence[Status]) -> int:
    """Keeps each task's newest status; an older report (lower sequence) never overwrites a newer one."""
    if not statuses:
        return 0
    rows = [(s.task_id, s.experiment_id, s.task_name, s.kind, s.state, s.attempt, s.message, s.progress, s.cache_hit,
             s.sequence, s.updated_at) for s in statuses]

    def write(conn: psycopg.Connection[Any]) -> int:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO task_status AS t (task_id, experiment_id, task_name, kind, state, attempt, message, "
                "progress, cache_hit, sequence, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (task_id) DO UPDATE SET state = EXCLUDED.state, attempt = EXCLUDED.attempt, "
                "message = EXCLUDED.message, progress = EXCLUDED.progress, cache_hit = EXCLUDED.cache_hit, "
                "sequence = EXCLUDED.sequence, updated_at = EXCLUDED.updated_at WHERE t.sequence < EXCLUDED.sequence",
                rows)
        return len(rows)

    return db.run(write)


@dataclass
class TaskRows:
    experiment_id: str
    task_id: str
    task_name: str
    kind: str
    labels: dict[str, str]
    rows: list[dict[str, Any]]
    cache_hit: bool


def put_results(db: Database, tasks: Sequence[TaskRows]) -> int:
    """Stores tasks' result rows in one COPY; sending the same rows again (a retry) adds nothing."""
    if not any(t.rows for t in tasks):
        return 0

    def write(conn: psycopg.Connection[Any]) -> int:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS incoming_results (experiment_id text, task_id text, "
                     "task_name text, kind text, labels jsonb, row_index integer, \"values\" jsonb, cache_hit boolean) "
                     "ON COMMIT DELETE ROWS")
        with conn.cursor().copy("COPY incoming_results (experiment_id, task_id, task_name, kind, labels, row_index, "
                                "\"values\", cache_hit) FROM STDIN") as copy:
            for t in tasks:
                labels = json.dumps(t.labels)
                for index, row in enumerate(t.rows):
                    copy.write_row((t.experiment_id, t.task_id, t.task_name, t.kind, labels, index, json.dumps(row),
                                    t.cache_hit))
        cur = conn.execute("INSERT INTO results (experiment_id, task_id, task_name, kind, labels, row_index, "
                           "\"values\", cache_hit) SELECT experiment_id, task_id, task_name, kind, labels, row_index, "
                           "\"values\", cache_hit FROM incoming_results ON CONFLICT (task_id, row_index) DO NOTHING")
        return cur.rowcount

    return db.run(write)


def insert_metrics(db: Database, rows: Iterable[MetricRow], *, before_commit: Callable[[], None] | None = None) -> int:
    """Appends metric points with one COPY in one transaction: all of them, or none if `rows` or
    `before_commit` (the last word of whoever sends them) raises.

    `rows` may be a stream that can be read only once (a gRPC client stream), so a lost connection
    is not retried here: it raises UnavailableError and, nothing being stored, the sender can send
    the whole stream again without duplicating points.
    """
    def write(conn: psycopg.Connection[Any]) -> int:
        count = 0
        with conn.cursor().copy("COPY metrics (experiment_id, task_id, kind, attempt, name, step, value, time, labels) "
                                "FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        if before_commit is not None:
            before_commit()
        return count

    return db.run(write, deadline_s=0)


@dataclass
class ArtifactEntry:
    dataset: str
    kind: str
    key: str
    uri: str
    digest: str
    size: int
    task_id: str
    files: list[dict[str, Any]]


def register_artifacts(db: Database, artifacts: Sequence[ArtifactEntry]) -> int:
    if not artifacts:
        return 0
    rows = [(a.dataset, a.kind, a.key, a.uri, a.digest, a.size, a.task_id, Jsonb(a.files)) for a in artifacts]

    def write(conn: psycopg.Connection[Any]) -> int:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO artifacts (dataset, kind, key, uri, digest, size_bytes, task_id, files) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (dataset, kind, key) DO UPDATE SET "
                "uri = EXCLUDED.uri, digest = EXCLUDED.digest, size_bytes = EXCLUDED.size_bytes, "
                "task_id = EXCLUDED.task_id, files = EXCLUDED.files, created_at = now()", rows)
        return len(rows)

    return db.run(write)


def lookup_artifacts(db: Database, *, key: str, dataset: str, kind: str, page_size: int,
                     page_token: str) -> tuple[list[dict[str, Any]], str]:
    clauses, params = ["true"], []
    for column, value in (("key", key), ("dataset", dataset), ("kind", kind)):
        if value:
            clauses.append(f"{column} = %s")
            params.append(value)
    if page_token:
        clauses.append("(dataset, kind, key) > (%s, %s, %s)")
        params += _decode(page_token, (str, str, str))
    rows = db.fetch_all(f"SELECT * FROM artifacts WHERE {' AND '.join(clauses)} ORDER BY dataset, kind, key "
                        f"LIMIT %s", [*params, page_size + 1])
    if len(rows) > page_size:
        rows = rows[:page_size]
        return rows, _encode([rows[-1]["dataset"], rows[-1]["kind"], rows[-1]["key"]])
    return rows, ""


def _encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def _decode(token: str, types: tuple[type, ...]) -> list[Any]:
    """The values of a page token made by `_encode` (one per type in `types`); anything else is bad input."""
    try:
        values = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        values = None
    if not (isinstance(values, list) and len(values) == len(types)
            and all(type(value) is expected for value, expected in zip(values, types, strict=True))):
        raise SpecError("malformed page token", path="page.page_token")
    return values


# Indexes that hold a table's rows in id order under equality filters: (these columns, id). A query uses
# the first whose columns it filters on all of (see `query`).
_ID_ORDERED_INDEXES = {
    RESULTS: (("experiment_id",), ("kind",)),
    METRICS: (("experiment_id", "name"), ("task_id", "name"), ("experiment_id",)),
}


def query(db: Database, *, table: str, experiment_id: str = "", kind: str = "", task_id: str = "",
          labels: dict[str, str] | None = None, metric_name: str = "", page_size: int = 100,
          page_token: str = "") -> tuple[list[dict[str, Any]], str]:
    """Rows of `results` or `metrics` matching every given filter, oldest first, keyset-paginated."""
    if table not in (RESULTS, METRICS):
        raise SpecError(f"unknown table {table!r}", path="table")
    if metric_name and table != METRICS:
        raise SpecError("metric_name filters metrics only", path="metric_name")
    equal = {column: value for column, value in (("experiment_id", experiment_id), ("kind", kind),
                                                 ("task_id", task_id), ("name", metric_name)) if value}
    after = _decode(page_token, (int,))[0] if page_token else 0
    # With a label filter the planner is left to choose: the labels' GIN index finds rare or absent
    # labels at once, and the statistics of the labels tell it when walking an id-ordered index is cheaper.
    prefix = () if labels else next(
        (columns for columns in _ID_ORDERED_INDEXES[table] if all(c in equal for c in columns)), ())
    if prefix:
        # The (prefix, id) index walked as a range. Written as `col = value`, the planner would drop the
        # constant columns from the ORDER BY and could scan the primary key instead, filtering as it goes:
        # on real data (a recent experiment's rows all come last) that reads most of the table.
        names, marks = ", ".join(prefix), ", ".join(["%s"] * len(prefix))
        clauses = [f"({names}, id) > ({marks}, %s)", f"({names}) <= ({marks})"]
        params: list[Any] = [*(equal[c] for c in prefix), after, *(equal[c] for c in prefix)]
        order = f"{names}, id"
    else:
        clauses, params, order = ["id > %s"], [after], "id"
    for column, value in equal.items():
        if column not in prefix:
            clauses.append(f"{column} = %s")
            params.append(value)
    if labels:
        clauses.append("labels @> %s")
        params.append(Jsonb(labels))
    columns = ('id, experiment_id, task_id, task_name, kind, labels, "values", created_at AS time' if table == RESULTS
               else "id, experiment_id, task_id, '' AS task_name, kind, labels, name, step, value, time")
    statement = f"SELECT {columns} FROM {table} WHERE {' AND '.join(clauses)} ORDER BY {order} LIMIT %s"
    # Not prepared when it filters by labels: a prepared statement's generic plan cannot see which labels
    # are asked for, guesses that many rows match and walks the ids; a label no row has then reads the
    # whole table.
    rows = db.run(lambda conn: conn.execute(statement, [*params, page_size + 1], prepare=not labels).fetchall())
    if len(rows) > page_size:
        rows = rows[:page_size]
        return rows, _encode([rows[-1]["id"]])
    return rows, ""


def progress(db: Database, experiment_id: str, recent: int = 10) -> tuple[dict[int, int], datetime | None,
                                                                          list[dict[str, Any]]]:
    def read(conn: psycopg.Connection[Any]) -> tuple[dict[int, int], datetime | None, list[dict[str, Any]]]:
        counts = {r["state"]: r["n"] for r in conn.execute(
            "SELECT state, count(*) AS n FROM task_status WHERE experiment_id = %s GROUP BY state", (experiment_id,))}
        latest = conn.execute("SELECT * FROM task_status WHERE experiment_id = %s ORDER BY updated_at DESC LIMIT %s",
                              (experiment_id, recent)).fetchall()
        return counts, latest[0]["updated_at"] if latest else None, latest

    return db.run(read)


def now() -> datetime:
    return datetime.now(UTC)
