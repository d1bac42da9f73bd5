"""The ehr-generator service on a real gRPC server (a socket on localhost), with real model artifacts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from ehrlab.core.artifacts.local import LocalStore
from ehrlab.core.runner import TaskFailure, run_local
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.services.ehr_generator.__main__ import setup
from ehrlab.v1 import common_pb2, ehr_generator_pb2, ehr_generator_pb2_grpc

F, M = ehr_generator_pb2.SEX_FEMALE, ehr_generator_pb2.SEX_MALE


@pytest.fixture(scope="module")
def store_root(trained: Path) -> Path:
    return trained.parents[3]        # <store>/artifacts/local/train_generator/<key>


@pytest.fixture(scope="module")
def stub(store_root: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[ehr_generator_pb2_grpc.EhrGeneratorStub]:
    settings = Settings(home=str(tmp_path_factory.mktemp("home")), artifact_store=str(store_root))
    server = Server("ehr-generator", settings, port=0, host="127.0.0.1")
    setup(server, settings)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield ehr_generator_pb2_grpc.EhrGeneratorStub(channel)
    channel.close()
    server.stop(grace=0)


def request(model: str, *demographics: tuple[float, int], count: int = 5, seed: int = 1,
            history: list[list[str]] = (), **sampling) -> ehr_generator_pb2.GenerateRequest:
    message = ehr_generator_pb2.GenerateRequest(
        model=model, count=count, seed=seed,
        demographics=[ehr_generator_pb2.Demographics(age=a, sex=s) for a, s in demographics],
        history=[ehr_generator_pb2.Visit(codes=v) for v in history])
    message.sampling.update(sampling)
    return message


def test_generate_streams_valid_patients_in_order_and_reproducibly(stub, trained: Path) -> None:
    patients = list(stub.Generate(request(str(trained), (30.0, F), (70.0, M), count=6, max_visits=4)))
    assert [p.index for p in patients] == list(range(12))
    assert [(p.demographics.age, p.demographics.sex) for p in patients] == [(30.0, F)] * 6 + [(70.0, M)] * 6
    assert all(p.visits and all(v.codes for v in p.visits) and len(p.visits) <= 4 for p in patients)
    assert not any(c.startswith("ICD9CM/60") for p in patients[:6] for v in p.visits for c in v.codes)
    again = list(stub.Generate(request(str(trained), (30.0, F), (70.0, M), count=6, max_visits=4)))
    assert again == patients
    history = [["ICD9CM/401.9"]]
    completed = list(stub.Generate(request(str(trained), (60.0, M), count=3, history=history)))
    assert all(list(p.visits[0].codes) == history[0] for p in completed)


@pytest.mark.parametrize(("bad", "field", "message"), [
    ({"demographics": [(-3.0, F)]}, "demographics[0].age", "negative"),
    ({"demographics": [(40.0, ehr_generator_pb2.SEX_UNSPECIFIED)]}, "demographics[0].sex", "SEX_FEMALE"),
    ({"count": 0}, "count", "positive"),
    ({"count": 1_000_001}, "count", "at most"),
    ({"history": [["ICD9CM/401.9", "NOT-A-CODE"]]}, "history[0][1]", "unknown code"),
    ({"sampling": {"temperature": 0}}, "sampling.temperature", "greater than 0"),
    ({"sampling": {"colour": "red"}}, "sampling.colour", "unknown key"),
])
def test_bad_requests_get_invalid_argument_with_the_field_and_no_patient(stub, trained: Path, bad, field,
                                                                         message) -> None:
    arguments = {"demographics": [(40.0, F)], "count": 2, "history": [], "sampling": {}, **bad}
    received = []
    with pytest.raises(grpc.RpcError) as error:
        for patient in stub.Generate(request(str(trained), *arguments["demographics"], count=arguments["count"],
                                             history=arguments["history"], **arguments["sampling"])):
            received.append(patient)
    assert received == []
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.value.details()
    assert dict(error.value.trailing_metadata())["ehrlab-field"] == field


def test_models_by_name_key_and_prefix_and_a_missing_one(stub, trained: Path, store_root: Path,
                                                          cohort_file: Path, tmp_path: Path) -> None:
    store = LocalStore(store_root)
    report, _ = run_local("evaluate_generator", {"n_synthetic": 20, "max_members": 20, "perplexity_records": 0},
                          {"model": trained, "cohort": cohort_file}, store=store)
    with pytest.raises(TaskFailure, match="not published"):
        run_local("publish_generator", {"name": "tiny", "at_least": {"fidelity.unigram_r2": 2.0}},
                  {"model": trained, "report": report}, store=store)
    with pytest.raises(TaskFailure, match=r"no number at 'fidelity\.nothing'"):
        run_local("publish_generator", {"name": "tiny", "at_least": {"fidelity.nothing": 0}},
                  {"model": trained, "report": report}, store=store)
    run_local("publish_generator", {"name": "tiny", "at_least": {"validity.valid_fraction": 1.0}},
              {"model": trained, "report": report}, store=store)
    key = trained.name
    for reference in ("tiny", key, f"local/{key}", f"artifacts/local/train_generator/{key}"):
        assert len(list(stub.Generate(request(reference, (50.0, M), count=2)))) == 2
    description = stub.DescribeModel(ehr_generator_pb2.DescribeModelRequest(model="tiny"))
    assert description.parameters > 0
    assert json_format.MessageToDict(description.training_data)["records"]["train"] == 510
    assert "validity.valid_fraction" in json_format.MessageToDict(description.metrics)["targets"]
    with pytest.raises(grpc.RpcError) as error:
        list(stub.Generate(request("no-such-model", (50.0, M))))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_model_with_a_foreign_tokenizer_is_refused(stub, trained: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(trained / "model", copy)
    body = json.loads((copy / "tokenizer.json").read_text())
    body["codes"] = list(reversed(body["codes"]))
    (copy / "tokenizer.json").write_text(json.dumps(body))
    with pytest.raises(grpc.RpcError) as error:
        stub.DescribeModel(ehr_generator_pb2.DescribeModelRequest(model=str(copy)))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "mismatch" in error.value.details()


def test_evaluate_returns_the_report(stub, trained: Path, cohort_file: Path) -> None:
    response = stub.Evaluate(ehr_generator_pb2.EvaluateRequest(
        model=str(trained), heldout=common_pb2.ArtifactRef(uri=str(cohort_file)), n_synthetic=40, seed=2,
        cohort=common_pb2.ArtifactRef(uri=str(cohort_file))))
    report = json_format.MessageToDict(response.report)
    assert report["records"]["synthetic"] == 40 and report["validity"]["valid_fraction"] == 1.0
    assert "membership_accuracy" in report["privacy"]
