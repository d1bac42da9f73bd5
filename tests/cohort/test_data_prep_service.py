"""The data-prep service over real gRPC: catalog of MEDS artifacts and registered datasets."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from ehrlab.cohort import meds as M
from ehrlab.cohort.catalog import Catalog
from ehrlab.core.artifacts.local import LocalStore
from ehrlab.core.channels import open_channel
from ehrlab.core.runner import run_local
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.services.data_prep.servicer import DataPrepServicer
from ehrlab.v1 import data_prep_pb2, data_prep_pb2_grpc

FIXTURES = Path(__file__).parent / "fixtures" / "mimic3"


class RemoteLikeStore(LocalStore):
    """A local store that will not be read in place, so the catalog downloads as it does from S3."""

    def local_path(self, key: str) -> Path | None:
        return None


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    store = LocalStore(home / "store")
    simulated, _ = run_local("simulate_cohort", {"n_patients": 300, "seed": 1, "shard_size": 100}, store=store,
                             dataset="demo")
    run_local("sample_cohort", {"size": 20, "seed": 4}, {"cohort": simulated}, store=store, dataset="demo")
    run_local("noop", {}, store=store, dataset="demo")                        # not a cohort kind: not listed
    broken = home / "store/artifacts/demo/import_meds/deadbeef"
    shutil.copytree(simulated, broken)
    (broken / "data/00001.parquet").unlink()                                  # incomplete: not listed
    (home / "datasets.yaml").write_text(f"datasets:\n  mimic: {{path: {FIXTURES}, format: mimic3}}\n"
                                        f"  sim_copy: {simulated}\n")
    return home


def serve(catalog: Catalog) -> Iterator[data_prep_pb2_grpc.DataPrepStub]:
    server = Server("data-prep", Settings(), port=0, host="127.0.0.1")
    server.add(data_prep_pb2_grpc.add_DataPrepServicer_to_server, DataPrepServicer(catalog), "ehrlab.v1.DataPrep")
    server.start()
    channel = open_channel(f"127.0.0.1:{server.port}")
    yield data_prep_pb2_grpc.DataPrepStub(channel)
    channel.close()
    server.stop(grace=0)


@pytest.fixture
def stub(home: Path) -> Iterator[data_prep_pb2_grpc.DataPrepStub]:
    yield from serve(Catalog(str(home / "store"), home))


def test_list_datasets(stub: data_prep_pb2_grpc.DataPrepStub, home: Path) -> None:
    listed = stub.ListDatasets(data_prep_pb2.ListDatasetsRequest()).datasets
    kinds = sorted((d.kind, d.format) for d in listed)
    assert kinds == [("registered", "meds"), ("registered", "mimic3"), ("sample_cohort", "meds"),
                     ("simulate_cohort", "meds")]
    simulated = next(d for d in listed if d.kind == "simulate_cohort")
    assert simulated.id.startswith("demo/simulate_cohort/") and simulated.uri.startswith("file://")
    assert {d.id for d in listed if d.kind == "registered"} == {"mimic", "sim_copy"}


def test_describe_dataset(stub: data_prep_pb2_grpc.DataPrepStub, home: Path) -> None:
    listed = {d.kind: d for d in stub.ListDatasets(data_prep_pb2.ListDatasetsRequest()).datasets}
    found = stub.DescribeDataset(data_prep_pb2.DescribeDatasetRequest(id=listed["simulate_cohort"].id))
    local = M.describe(home / "store/artifacts" / listed["simulate_cohort"].id)
    assert (found.patients, found.codes, found.events, found.shards) == (300, local["codes"], local["events"], 3)
    assert found.time_start.ToDatetime().isoformat() == local["time_start"]
    assert found.time_end.ToDatetime().isoformat() == local["time_end"]
    assert found.dataset.name == "simulated"
    assert json_format.MessageToDict(found.metadata)["simulation"]["n_patients"] == 300
    sample = stub.DescribeDataset(data_prep_pb2.DescribeDatasetRequest(id=listed["sample_cohort"].id))
    assert sample.patients == 20 and sample.dataset.name == "sample"
    mimic = stub.DescribeDataset(data_prep_pb2.DescribeDatasetRequest(id="mimic"))
    assert mimic.patients == 4 and mimic.dataset.format == "mimic3"


def test_preview_cohort(stub: data_prep_pb2_grpc.DataPrepStub) -> None:
    patients = stub.PreviewCohort(data_prep_pb2.PreviewCohortRequest(dataset_id="sim_copy", limit=3)).patients
    assert [p.subject_id for p in patients] == [1, 2, 3]
    first = patients[0]
    assert first.events[0].code.startswith("GENDER//") and not first.events[0].HasField("time")
    assert first.events[1].code == "MEDS_BIRTH"
    summary = json_format.MessageToDict(first.summary)
    assert summary["sex"] in ("F", "M") and summary["visits"] >= 0 and "birth" in summary
    assert all(not e.HasField("numeric_value") for e in first.events)
    chosen = stub.PreviewCohort(data_prep_pb2.PreviewCohortRequest(dataset_id="sim_copy", subject_ids=[250, 7]))
    assert [p.subject_id for p in chosen.patients] == [7, 250]
    default = stub.PreviewCohort(data_prep_pb2.PreviewCohortRequest(dataset_id="mimic"))
    assert [p.subject_id for p in default.patients] == [101, 102, 103, 104]


def test_bad_requests(stub: data_prep_pb2_grpc.DataPrepStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.DescribeDataset(data_prep_pb2.DescribeDatasetRequest(id=""))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(caught.value.trailing_metadata())["ehrlab-field"] == "id"
    for missing in ("nope", "demo/simulate_cohort/0000", "demo/train_catboost/abc"):
        with pytest.raises(grpc.RpcError) as caught:
            stub.DescribeDataset(data_prep_pb2.DescribeDatasetRequest(id=missing))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND, missing
    with pytest.raises(grpc.RpcError) as caught:
        stub.PreviewCohort(data_prep_pb2.PreviewCohortRequest(dataset_id="sim_copy", limit=5000))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(caught.value.trailing_metadata())["ehrlab-field"] == "limit"


def test_a_broken_registry_is_an_invalid_argument_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "datasets.yaml").write_text("datasets:\n  a/b: /x\n")
    for stub in serve(Catalog(str(tmp_path / "store"), tmp_path)):
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListDatasets(data_prep_pb2.ListDatasetsRequest())
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = caught.value.details()
        assert "datasets.yaml" in details and "must be non-empty and without '/'" in details


def test_remote_artifacts_are_downloaded_only_as_needed(home: Path, tmp_path: Path) -> None:
    cache_home = tmp_path / "home"
    catalog = Catalog(RemoteLikeStore(home / "store"), cache_home)
    (simulated,) = [d for d in catalog.datasets() if d.kind == "simulate_cohort"]
    assert catalog.describe(simulated.id).summary["subjects"] == 300
    downloaded = cache_home / "cache/data-prep" / simulated.prefix
    assert not (downloaded / "data").exists()                       # the summary needed metadata only
    previews = catalog.preview(simulated.id, limit=2)
    assert [p.subject_id for p in previews] == [1, 2]
    assert sorted(p.name for p in (downloaded / "data").iterdir()) == ["00000.parquet"]
