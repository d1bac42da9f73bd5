"""The trainer service over real gRPC: the model catalog is the registry's trainer kinds, validation names fields."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.protobuf import json_format, struct_pb2

from ehrlab.core.channels import open_channel
from ehrlab.core.kinds import registry
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.services.trainer.servicer import TrainerServicer
from ehrlab.v1 import trainer_pb2, trainer_pb2_grpc


@pytest.fixture
def trainer() -> Iterator[trainer_pb2_grpc.TrainerStub]:
    server = Server("trainer", Settings(), port=0, host="127.0.0.1")
    server.add(trainer_pb2_grpc.add_TrainerServicer_to_server, TrainerServicer(), "ehrlab.v1.Trainer")
    server.start()
    channel = open_channel(f"127.0.0.1:{server.port}")
    yield trainer_pb2_grpc.TrainerStub(channel)
    channel.close()
    server.stop(grace=0)


def validate(stub: trainer_pb2_grpc.TrainerStub, kind: str, params: dict) -> trainer_pb2.ValidateTrainSpecResponse:
    message = struct_pb2.Struct()
    message.update(params)
    return stub.ValidateTrainSpec(trainer_pb2.ValidateTrainSpecRequest(kind=kind, params=message))


def test_the_catalog_lists_every_trainer_kind_of_every_library(trainer: trainer_pb2_grpc.TrainerStub) -> None:
    listed = {kind.kind: kind for kind in trainer.ListModelKinds(trainer_pb2.ListModelKindsRequest()).kinds}
    assert set(listed) == {name for name, kind in registry().items() if kind.service == "trainer"}
    assert {"train_catboost", "pretrain_bert", "finetune_bert", "calibrate", "estimate_effects",
            "aggregate_estimates"} <= set(listed)
    assert "simulate_outcomes" not in listed                       # a data-prep kind
    catboost = listed["train_catboost"]
    schema = json_format.MessageToDict(catboost.params_schema)
    assert {"seed", "iterations", "depth", "tuning"} <= set(schema["properties"]) and "seed" in schema["required"]
    assert catboost.resources.cpu == 2 and catboost.inputs == ["data", "folds"] and "auc" in catboost.metrics
    assert catboost.code_version == registry()["train_catboost"].code_version


def test_valid_params_come_back_normalized(trainer: trainer_pb2_grpc.TrainerStub) -> None:
    answer = validate(trainer, "finetune_bert", {"seed": 3, "epochs": 2})
    assert answer.valid and not answer.errors
    normalized = json_format.MessageToDict(answer.normalized)
    assert normalized["epochs"] == 2 and normalized["learning_rate"] == 2e-4 and normalized["device"] == "auto"


def test_every_bad_field_is_named_by_its_path(trainer: trainer_pb2_grpc.TrainerStub) -> None:
    answer = validate(trainer, "pretrain_bert", {"seed": 1, "epochs": 0, "model": {"hidden_size": 30, "heads": 4},
                                                 "colour": "red"})
    assert not answer.valid
    errors = {error.path: error.message for error in answer.errors}
    assert set(errors) == {"params.epochs", "params.model", "params.colour"}
    assert "greater than or equal to 1" in errors["params.epochs"]
    assert "multiple of heads" in errors["params.model"] and errors["params.colour"] == "unknown key"
    missing = validate(trainer, "train_catboost", {})
    assert [(e.path, e.message) for e in missing.errors] == [("params.seed", "required key is missing")]


@pytest.mark.parametrize(("kind", "message"), [
    ("train_catbost", "did you mean 'train_catboost'"),
    ("simulate_outcomes", "runs on the data-prep service, not the trainer"),
    ("", "required"),
])
def test_a_bad_kind_is_a_field_error_on_kind(trainer: trainer_pb2_grpc.TrainerStub, kind: str, message: str) -> None:
    answer = validate(trainer, kind, {})
    assert not answer.valid and answer.errors[0].path == "kind" and message in answer.errors[0].message
