from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ehrlab.core.artifacts.local import LocalStore
from ehrlab.core.context import MemoryReporter
from ehrlab.core.errors import SpecError
from ehrlab.core.kinds import get_kind
from ehrlab.core.runner import run_local
from ehrlab.ehrgen.kinds import TrainGeneratorParams
from ehrlab.ehrgen.records import Patient
from ehrlab.ehrgen.train import train_generator
from tests.ehrgen.conftest import TINY


def test_the_task_writes_a_loadable_model_with_its_split(trained: Path, bundle) -> None:
    files = {p.relative_to(trained).as_posix() for p in trained.rglob("*") if p.is_file()}
    assert {"model/config.json", "model/tokenizer.json", "model/weights.safetensors", "model/training.json",
            "manifest.json", "results.jsonl"} <= files
    training = json.loads((trained / "model" / "training.json").read_text())
    assert training["records"] == {"train": 510, "validation": 30, "test": 60}
    assert len(training["split"]["test"]) == 60 and training["artifact"].startswith("artifacts/local/train_generator/")
    assert bundle.tokenizer.kind == "flat" and bundle.model.config.vocab_size == bundle.tokenizer.vocab_size
    metrics = training["metrics"]
    assert metrics["val_code_accuracy"] > 0.05      # far better than 1 / len(codes) after a few epochs
    assert metrics["perplexity"] == pytest.approx(2.718281828 ** metrics["loss"], rel=1e-6)


def test_metrics_reach_the_reporter(cohort_file: Path, tmp_path: Path) -> None:
    reporter = MemoryReporter()
    run_local("train_generator", {**TINY, "epochs": 1, "log_every": 2}, {"cohort": cohort_file},
              store=LocalStore(tmp_path), reporter=reporter)
    names = set().union(*(values for _, values, _ in reporter.metric_points))
    assert {"loss", "perplexity", "code_accuracy", "tokens_per_s", "lr", "val_loss", "val_perplexity",
            "val_code_accuracy"} <= names
    assert all(values["tokens_per_s"] > 0 for _, values, _ in reporter.metric_points if "tokens_per_s" in values)


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(cohort: list[Patient], tmp_path: Path) -> None:
    params = TrainGeneratorParams(**{**TINY, "epochs": 2, "batch_size": 16, "checkpoint_every": 5, "dropout": 0.1})
    train, val = cohort[:160], cohort[160:170]
    straight, _ = train_generator(train, val, params)

    class Crash(Exception):
        pass

    saved: list[Path] = []

    def crash_after_checkpoint(step: int, values: dict) -> None:
        if saved and step > 10:
            raise Crash

    with pytest.raises(Crash):
        train_generator(train, val, params, report=crash_after_checkpoint, checkpoint_dir=tmp_path,
                        save_checkpoint=saved.append)
    assert torch.load(saved[-1], weights_only=False)["step"] == 10
    resumed, _ = train_generator(train, val, params, resume_from=saved[-1])
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name


def test_hierarchical_training_and_bad_parameters(cohort_file: Path, tmp_path: Path) -> None:
    path, _ = run_local("train_generator", {**TINY, "epochs": 1, "tokenizer": "hierarchical"},
                        {"cohort": cohort_file}, store=LocalStore(tmp_path))
    assert json.loads((path / "model" / "tokenizer.json").read_text())["kind"] == "hierarchical"
    kind = get_kind("train_generator")
    with pytest.raises(SpecError, match=r"params\.size"):
        kind.validate_params({"size": "huge"}, path="params")
    with pytest.raises(SpecError, match=r"params\.lr"):
        kind.validate_params({"lr": -1}, path="params")
    with pytest.raises(SpecError, match="no training records"):
        train_generator([], [], TrainGeneratorParams())
