"""A result-store servicer behind a real gRPC server on a socket, over a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from ehrlab.core.channels import open_channel
from ehrlab.core.db import Database
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.results.store import open_database
from ehrlab.services.result_store.servicer import ResultStoreServicer
from ehrlab.v1 import common_pb2, result_store_pb2, result_store_pb2_grpc

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class ResultStore:
    stub: result_store_pb2_grpc.ResultStoreStub
    db: Database

    def count(self, table: str) -> int:
        """Rows in one of the service's tables, read directly (to prove what was, or was not, written)."""
        row = self.db.fetch_one(f"SELECT count(*) AS n FROM {table}")
        assert row is not None
        return int(row["n"])

    def query_all(self, page_size: int = 0, **filters: Any) -> list[result_store_pb2.QueryRow]:
        """Every row matching `filters`, following next_page_token to the end."""
        rows: list[result_store_pb2.QueryRow] = []
        token = ""
        while True:
            page = self.stub.Query(result_store_pb2.QueryRequest(
                page=common_pb2.PageRequest(page_size=page_size, page_token=token), **filters), timeout=30)
            rows.extend(page.rows)
            token = page.next_page_token
            if not token:
                return rows


@pytest.fixture
def result_store(database_url: str) -> Iterator[ResultStore]:
    db = open_database(database_url)
    server = Server("result-store", Settings(), port=0, host="127.0.0.1")
    server.add(result_store_pb2_grpc.add_ResultStoreServicer_to_server, ResultStoreServicer(db),
               "ehrlab.v1.ResultStore")
    server.start()
    channel = open_channel(f"127.0.0.1:{server.port}")
    yield ResultStore(result_store_pb2_grpc.ResultStoreStub(channel), db)
    channel.close()
    server.stop(grace=0)
    db.close()


def at(seconds: float) -> timestamp_pb2.Timestamp:
    """A timestamp `seconds` after a fixed instant (tests compare times exactly)."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(EPOCH + timedelta(seconds=seconds))
    return stamp


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def plain(message: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def task_results(task_id: str, rows: list[dict[str, Any]], *, experiment_id: str = "x1", kind: str = "estimate",
                 labels: dict[str, str] | None = None) -> result_store_pb2.TaskResults:
    return result_store_pb2.TaskResults(
        experiment_id=experiment_id, task_id=task_id, task_name=task_id.split("-")[-1], kind=kind,
        labels=labels or {}, rows=[common_pb2.ResultRow(values=struct(r)) for r in rows])


def invalid_field(call: Callable[[], object]) -> str:
    """Runs a call that must fail with INVALID_ARGUMENT; returns the field path the server named."""
    with pytest.raises(grpc.RpcError) as raised:
        call()
    error: Any = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    return dict(error.trailing_metadata())["ehrlab-field"]
