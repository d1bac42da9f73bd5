"""RegisterArtifacts (many per call, idempotent per dataset/kind/key) and LookupArtifact (filters, pages)."""

from __future__ import annotations

import base64

import pytest

from ehrlab.v1 import common_pb2, result_store_pb2
from tests.resultstore.conftest import ResultStore, invalid_field


def record(dataset: str, kind: str, key: str, *, uri: str = "", files: int = 2) -> result_store_pb2.ArtifactRecord:
    return result_store_pb2.ArtifactRecord(
        artifact=common_pb2.ArtifactRef(uri=uri or f"file:///store/artifacts/{dataset}/{kind}/{key}",
                                        digest=f"sha-{key}", dataset=dataset, kind=kind, key=key,
                                        size_bytes=100 * files),
        task_id=f"x1-{key}",
        files=[common_pb2.ArtifactFile(path=f"part-{i}.parquet", size_bytes=100, sha256=f"{key}{i}")
               for i in range(files)])


def register(store: ResultStore, *records: result_store_pb2.ArtifactRecord) -> int:
    return store.stub.RegisterArtifacts(result_store_pb2.RegisterArtifactsRequest(artifacts=records),
                                        timeout=30).accepted


def lookup(store: ResultStore, page_size: int = 0, **filters: str) -> list[common_pb2.ArtifactRef]:
    found, token = [], ""
    while True:
        page = store.stub.LookupArtifact(result_store_pb2.LookupArtifactRequest(
            page=common_pb2.PageRequest(page_size=page_size, page_token=token), **filters), timeout=30)
        found.extend(page.artifacts)
        token = page.next_page_token
        if not token:
            return found


@pytest.fixture
def registered(result_store: ResultStore) -> ResultStore:
    records = [record(dataset, kind, f"{dataset}-{kind}-{i}") for dataset in ("mimic", "synthetic")
               for kind in ("cohort", "folds") for i in range(3)]
    assert register(result_store, *records) == 12
    return result_store


def test_lookup_by_key_dataset_and_kind(registered: ResultStore) -> None:
    [found] = lookup(registered, key="mimic-folds-1")
    assert (found.dataset, found.kind, found.digest, found.size_bytes) == ("mimic", "folds", "sha-mimic-folds-1", 200)
    assert found.uri == "file:///store/artifacts/mimic/folds/mimic-folds-1"
    assert [a.key for a in lookup(registered, dataset="synthetic", kind="cohort")] == \
        [f"synthetic-cohort-{i}" for i in range(3)]
    assert len(lookup(registered, kind="folds")) == 6
    assert lookup(registered, key="no-such-key") == []
    files = registered.db.fetch_one("SELECT files, task_id FROM artifacts WHERE key = 'mimic-folds-1'")
    assert files == {"task_id": "x1-mimic-folds-1", "files": [
        {"path": "part-0.parquet", "size": 100, "sha256": "mimic-folds-10"},
        {"path": "part-1.parquet", "size": 100, "sha256": "mimic-folds-11"}]}


def test_lookup_pages_cover_every_artifact_once(registered: ResultStore) -> None:
    for page_size in (1, 5, 12, 0):
        keys = [a.key for a in lookup(registered, page_size=page_size)]
        assert len(keys) == 12 and sorted(keys) == sorted(set(keys))


def test_registering_again_updates_in_place(registered: ResultStore) -> None:
    moved = record("mimic", "cohort", "mimic-cohort-0", uri="s3://bucket/artifacts/mimic/cohort/mimic-cohort-0")
    assert register(registered, moved, moved) == 2
    [found] = lookup(registered, key="mimic-cohort-0")
    assert found.uri.startswith("s3://bucket/")
    assert registered.count("artifacts") == 12


@pytest.mark.parametrize("field", ["dataset", "kind", "key", "digest"])
def test_an_incomplete_artifact_is_rejected_and_nothing_of_the_call_is_stored(result_store: ResultStore,
                                                                             field: str) -> None:
    bad = record("mimic", "cohort", "k2")
    bad.artifact.ClearField(field)  # type: ignore[arg-type]
    assert invalid_field(lambda: register(result_store, record("mimic", "cohort", "k1"), bad)) == \
        f"artifacts[1].artifact.{field}"
    assert result_store.count("artifacts") == 0


@pytest.mark.parametrize("values", ['["mimic"]', '["mimic", "cohort", 3]', '{"key": "k"}', "[]"])
def test_a_malformed_lookup_page_token_is_invalid(registered: ResultStore, values: str) -> None:
    token = base64.urlsafe_b64encode(values.encode()).decode()
    assert invalid_field(lambda: registered.stub.LookupArtifact(result_store_pb2.LookupArtifactRequest(
        page=common_pb2.PageRequest(page_token=token)))) == "page.page_token"
