"""Fixtures shared by every test area: a real PostgreSQL (one per test process) and fresh databases.

Each area (tests/<area>/conftest.py) adds its own fixtures on top: real S3, Prometheus, a running stack.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from ehrlab.core.embedded.postgres import EmbeddedPostgres
from ehrlab.core.embedded.stack import START_ORDER, Stack

pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture(scope="session")
def server_root() -> Iterator[Path]:
    """Where this test process keeps server data (PostgreSQL clusters, stacks).

    Outside pytest's own temporary root on purpose: another pytest session resets that root to mode
    0700, and PostgreSQL, which runs as its own user under root, would lose its data directory.
    """
    root = Path(tempfile.mkdtemp(prefix="ehrlab-tests-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(server_root: Path) -> Iterator[EmbeddedPostgres]:
    """A real PostgreSQL server for this test process (fsync off: nothing must survive a crash)."""
    server = EmbeddedPostgres(server_root / "pg", durable=False)
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def database_url(postgres: EmbeddedPostgres) -> Iterator[str]:
    """A fresh, empty database on the shared server, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = postgres.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    path.mkdir()
    return path


def _start_stack(home: Path, services: tuple[str, ...] = START_ORDER) -> Stack:
    return Stack(home, services=services, durable=False,
                 extra_env={"EHRLAB_LOCAL_CPUS": "4"}).up(timeout=120)


@pytest.fixture(scope="session")
def stack(server_root: Path) -> Iterator[Stack]:
    """All seven services, an embedded PostgreSQL and a local artifact store, shared by a test process.

    `stack.client()` talks to it; `stack.env()` is the environment a subprocess (the CLI) needs.
    Experiments are independent, so tests share it; fault drills use `stack_factory` instead.
    """
    running = _start_stack(server_root / "stack" / ".ehrlab")
    yield running
    running.down()


@pytest.fixture(scope="session")
def core_stack(server_root: Path) -> Iterator[Stack]:
    """Only the controller and the result-store: for tests of the engine itself."""
    running = _start_stack(server_root / "core-stack" / ".ehrlab", ("result-store", "controller"))
    yield running
    running.down()


@pytest.fixture
def stack_factory(server_root: Path) -> Iterator[Callable[..., Stack]]:
    """Starts private stacks (for tests that kill or restart services); all are stopped afterwards."""
    started: list[Stack] = []

    def start(services: tuple[str, ...] = ("result-store", "controller"), **env: str) -> Stack:
        home = server_root / f"private-{uuid.uuid4().hex[:8]}" / ".ehrlab"
        running = Stack(home, services=services, durable=False,
                        extra_env={"EHRLAB_LOCAL_CPUS": "4", **env}).up(timeout=120)
        started.append(running)
        return running

    yield start
    for running in started:
        running.down()
