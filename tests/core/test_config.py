"""Spec layers: deep merge (later wins), provenance, and errors that name the file and key path."""

from pathlib import Path

import pytest
from pydantic import Field

from ehrlab.core.config import Layer, SpecModel, load_layer, merge_layers, validate
from ehrlab.core.errors import SpecError


class Train(SpecModel):
    lr: float = 0.1
    epochs: int = Field(1, ge=1)


class Spec(SpecModel):
    name: str
    train: Train = Field(default_factory=Train)
    tags: list[str] = Field(default_factory=list)


def test_later_layers_win_and_mappings_merge_deeply() -> None:
    merged = merge_layers([
        Layer("base.yaml", {"name": "a", "train": {"lr": 0.1, "epochs": 2}, "tags": ["x", "y"]}),
        Layer("dataset.yaml", {"train": {"epochs": 5}}),
        Layer("experiment.yaml", {"tags": ["z"]}),
    ])
    assert merged.data == {"name": "a", "train": {"lr": 0.1, "epochs": 5}, "tags": ["z"]}
    assert merged.source_of(("train", "epochs")) == "dataset.yaml"
    assert merged.source_of(("train", "lr")) == "base.yaml"
    assert merged.source_of(("tags", 0)) == "experiment.yaml"


def test_replacing_a_mapping_forgets_the_old_provenance() -> None:
    merged = merge_layers([Layer("a.yaml", {"train": {"lr": 1}}), Layer("b.yaml", {"train": 3})])
    assert merged.data == {"train": 3}
    assert merged.source_of(("train", "lr")) == "b.yaml"


def test_wrong_type_names_the_file_that_set_it() -> None:
    merged = merge_layers([Layer("base.yaml", {"name": "a"}), Layer("exp.yaml", {"train": {"epochs": "many"}})])
    with pytest.raises(SpecError) as caught:
        validate(Spec, merged)
    assert str(caught.value).startswith("exp.yaml: train.epochs: ")
    assert caught.value.path == "train.epochs"


def test_unknown_keys_are_errors_and_every_problem_is_counted() -> None:
    merged = merge_layers([Layer("exp.yaml", {"name": "a", "train": {"lrr": 1, "epochs": 0}})])
    with pytest.raises(SpecError) as caught:
        validate(Spec, merged)
    message = str(caught.value)
    assert "exp.yaml: train." in message and "(and 1 more:" in message
    assert {p.path for p in caught.value.problems} == {"train.lrr", "train.epochs"}
    assert any(p.message == "unknown key" for p in caught.value.problems)


def test_missing_required_key() -> None:
    with pytest.raises(SpecError, match="name: required key is missing"):
        validate(Spec, merge_layers([Layer("exp.yaml", {})]))


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: a\ntrain:\n  lr: [1, 2\n")
    with pytest.raises(SpecError) as caught:
        load_layer(path)
    assert str(caught.value).startswith(f"{path}: line ")
    assert "malformed YAML" in str(caught.value)


def test_a_spec_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="must be a mapping"):
        load_layer(path)
    with pytest.raises(SpecError, match="file not found"):
        load_layer(tmp_path / "missing.yaml")
