"""PostgreSQL access: a pooled connection per service schema, migrations, and retry on reconnect.

Each service owns one schema and runs its own migrations (SQL files in its package, applied in
name order under an advisory lock, recorded in `<schema>.schema_migrations`). `Database.run` retries
a whole transaction when the connection drops (a database restart), with backoff up to a deadline,
so callers write their transactions to be idempotent and never see a transient outage.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from ehrlab.core.errors import UnavailableError

T = TypeVar("T")
log = logging.getLogger("ehrlab.db")

_TRANSIENT = (psycopg.OperationalError, PoolTimeout)
_TRUSTED_FOR_S = 1.0  # a connection returned this recently is lent without a check


class Database:
    def __init__(self, url: str, *, schema: str, min_size: int = 1, max_size: int = 8,
                 retry_deadline_s: float = 60.0, application: str = "ehrlab") -> None:
        if not url:
            raise UnavailableError("no database URL: set EHRLAB_DATABASE_URL (or run `ehrlab up`)")
        self.schema = schema
        self.retry_deadline_s = retry_deadline_s
        self._returned: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = weakref.WeakKeyDictionary()
        self.pool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, open=False, name=f"{application}-{schema}",
            kwargs={"options": f"-c search_path={schema},public", "application_name": application,
                    "row_factory": dict_row},
            check=self._check, reset=self._note_return, reconnect_timeout=retry_deadline_s,
        )

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        """Checks a connection with a round trip before lending it, unless it was returned moments ago:
        a busy caller (the engine's pass) would otherwise pay a round trip per transaction. A connection
        a restart broke in that moment fails its transaction, which `run` retries on a new one."""
        if time.monotonic() - self._returned.get(conn, 0.0) > _TRUSTED_FOR_S:
            ConnectionPool.check_connection(conn)

    def _note_return(self, conn: psycopg.Connection[Any]) -> None:
        self._returned[conn] = time.monotonic()

    def open(self, timeout: float = 30.0) -> Database:
        self.pool.open(wait=True, timeout=timeout)
        return self

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A connection in a transaction: commits on success, rolls back on error. Waits at most
        `timeout` (default: the retry deadline, capped at 30 s) for a free or new connection."""
        wait = min(self.retry_deadline_s, 30.0) if timeout is None else timeout
        with self.pool.connection(timeout=max(wait, 0.1)) as conn:
            yield conn

    def run(self, work: Callable[[psycopg.Connection[Any]], T], *, deadline_s: float | None = None) -> T:
        """Runs `work(conn)` in a transaction, retrying on lost connections until the deadline."""
        deadline = time.monotonic() + (self.retry_deadline_s if deadline_s is None else deadline_s)
        delay = 0.05
        while True:
            try:
                with self.transaction(timeout=max(0.1, min(30.0, deadline - time.monotonic()))) as conn:
                    return work(conn)
            except _TRANSIENT as exc:
                if time.monotonic() + delay > deadline:
                    raise UnavailableError(f"database unavailable: {exc}".strip()) from exc
                log.warning("database connection lost (%s); retrying in %.2fs", str(exc).strip(), delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def fetch_all(self, query: str | sql.Composed, params: Any = None) -> list[dict[str, Any]]:
        return self.run(lambda conn: conn.execute(query, params).fetchall())

    def fetch_one(self, query: str | sql.Composed, params: Any = None) -> dict[str, Any] | None:
        return self.run(lambda conn: conn.execute(query, params).fetchone())

    def execute(self, query: str | sql.Composed, params: Any = None) -> None:
        self.run(lambda conn: conn.execute(query, params))

    def migrate(self, package: str, folder: str = "migrations") -> list[str]:
        """Applies the package's `folder/*.sql` files not yet applied; returns their names."""
        files = sorted((f.name, f.read_text()) for f in resources.files(package).joinpath(folder).iterdir()
                       if f.name.endswith(".sql"))

        def apply(conn: psycopg.Connection[Any]) -> list[str]:
            schema = sql.Identifier(self.schema)
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ehrlab-migrate-{self.schema}",))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.schema_migrations (name text PRIMARY KEY, "
                                 "applied_at timestamptz NOT NULL DEFAULT now())").format(schema))
            done = {r["name"] for r in conn.execute(sql.SQL("SELECT name FROM {}.schema_migrations").format(schema))}
            applied = []
            for name, text in files:
                if name in done:
                    continue
                conn.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(schema))
                conn.execute(text)
                conn.execute(sql.SQL("INSERT INTO {}.schema_migrations (name) VALUES (%s)").format(schema), (name,))
                applied.append(name)
            return applied

        applied = self.run(apply)
        if applied:
            log.info("schema %s: applied %s", self.schema, ", ".join(applied))
        return applied
