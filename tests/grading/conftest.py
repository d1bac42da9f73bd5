"""Fixtures of the grading tests: a real GradingStore gRPC server over a fresh PostgreSQL database,
its client (also found by tasks through EHRLAB_RESULT_STORE_ADDR), and a scripted LLM vendor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ehrlab.core.db import Database
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.grading.client import GradingClient
from ehrlab.grading.fake_llm import FakeLLM
from ehrlab.grading.model import Case, Criterion, Rubric, Sense, Validation
from ehrlab.grading.service import register
from ehrlab.grading.store import SCHEMA, GradingStore

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


@pytest.fixture
def grading_db(database_url: str) -> Iterator[Database]:
    db = Database(database_url, schema=SCHEMA, application="grading-tests").open()
    yield db
    db.close()


@pytest.fixture
def grading_address(grading_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A GradingStore server on a free port, as the result-store process hosts it."""
    server = Server("result-store", Settings(), port=0, host="127.0.0.1")
    register(server, grading_db)
    server.start()
    address = f"127.0.0.1:{server.port}"
    monkeypatch.setenv("EHRLAB_RESULT_STORE_ADDR", address)
    yield address
    server.stop(grace=0)


@pytest.fixture
def grading(grading_address: str) -> Iterator[GradingClient]:
    with GradingClient.connect(grading_address) as client:
        yield client


@pytest.fixture
def store(grading_db: Database, grading_address: str) -> GradingStore:
    """Direct access to the tables, to check what the service wrote."""
    return GradingStore(grading_db)


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    fake = FakeLLM(hang_s=3.0).start()
    yield fake
    fake.stop()


def criteria(count: int = 3, negative: int = 1) -> list[Criterion]:
    positive = [Criterion(criterion=f"Documents fact number {i}", weight=i + 1, sense=Sense.POSITIVE)
                for i in range(count - negative)]
    return positive + [Criterion(criterion=f"States forbidden thing {i}", weight=2, sense=Sense.NEGATIVE)
                       for i in range(negative)]


def rubric(author: str, validation: Validation = Validation.ACCEPTED, days: int = 0, count: int = 3) -> Rubric:
    when = None if validation is Validation.NOT_EVALUATED else T0 + timedelta(days=days)
    return Rubric(author=author, validation=validation, validated_at=when, criteria=criteria(count))


def case(name: str, *rubrics: Rubric) -> Case:
    return Case(name=name, transcript=f"DOCTOR: Hello.\nPATIENT: I am case {name}.",
                facts={"subjective": [f"Case {name} complaint"], "plan": ["Follow up"]}, rubrics=list(rubrics))
