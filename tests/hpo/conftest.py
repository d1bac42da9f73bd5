"""Fixtures of the hpo tests: one database per test module (Optuna's tables take a second to create),
a StudyManager on it, and unique study names so tests in a module never share a study."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from ehrlab.core.embedded.postgres import EmbeddedPostgres
from ehrlab.hpo.storage import ensure_tables
from ehrlab.hpo.studies import StudyManager


@pytest.fixture(scope="module")
def hpo_database(postgres: EmbeddedPostgres) -> Iterator[str]:
    name = f"hpo_{uuid.uuid4().hex[:12]}"
    admin = postgres.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = postgres.url.rsplit("/", 1)[0] + f"/{name}"
    ensure_tables(url).engine.dispose()
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def manager(hpo_database: str) -> Iterator[StudyManager]:
    manager = StudyManager(hpo_database, reap_interval_s=0.05)
    yield manager
    manager.close()


@pytest.fixture
def study_name() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"
