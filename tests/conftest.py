"""Fixtures shared by every test area: a real PostgreSQL (one per test process) and fresh databases.

Each area (tests/<area>/conftest.py) adds its own fixtures on top: real S3, Prometheus, a running stack.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from ehrlab.core.embedded.postgres import EmbeddedPostgres
from ehrlab.core.embedded.stack import START_ORDER, Stack

pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A real PostgreSQL server for this test process (fsync off: nothing must survive a crash)."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", durable=False)
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
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """All seven services, an embedded PostgreSQL and a local artifact store, shared by a test process.

    `stack.client()` talks to it; `stack.env()` is the environment a subprocess (the CLI) needs.
    Experiments are independent, so tests share it; fault drills use `stack_factory` instead.
    """
    running = _start_stack(tmp_path_factory.mktemp("stack") / ".ehrlab")
    yield running
    running.down()


@pytest.fixture(scope="session")
def core_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Only the controller and the result-store: for tests of the engine itself."""
    running = _start_stack(tmp_path_factory.mktemp("core-stack") / ".ehrlab", ("result-store", "controller"))
    yield running
    running.down()


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Starts private stacks (for tests that kill or restart services); all are stopped afterwards."""
    started: list[Stack] = []

    def start(services: tuple[str, ...] = ("result-store", "controller"), **env: str) -> Stack:
        home = tmp_path / f"stack{len(started)}" / ".ehrlab"
        running = Stack(home, services=services, durable=False,
                        extra_env={"EHRLAB_LOCAL_CPUS": "4", **env}).up(timeout=120)
        started.append(running)
        return running

    yield start
    for running in started:
        running.down()
