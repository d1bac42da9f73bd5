"""train_text_classifier end to end on the MiniLM encoder (one layer, short inputs, tiny data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrlab.core.artifacts.local import LocalStore
from ehrlab.core.context import MemoryReporter
from ehrlab.core.errors import ConflictError
from ehrlab.core.runner import EXIT_CONFIG, EXIT_PRUNED, TaskFailure, run_local
from ehrlab.textclf.registry import list_models, publish_model

pytest.importorskip("transformers")
TINY = {"encoder_layers": 1, "max_length": 16, "batch_size": 16, "eval_batch_size": 64, "checkpoint": False,
        "lr": 5e-4}


def train(csv: Path, reporter: MemoryReporter | None = None, store: LocalStore | None = None,
          **params: object) -> tuple[dict, Path]:
    out, _ = run_local("train_text_classifier", {**TINY, **params}, {"data": csv}, reporter=reporter, store=store)
    return json.loads((out / "metrics.json").read_text()), out


def test_sentence_classification_reports_each_epoch(minilm: str, sentences_csv: Path) -> None:
    reporter = MemoryReporter()
    metrics, out = train(sentences_csv, reporter, encoder=minilm, epochs=2,
                         head={"pooling": "attention", "layers": 2, "hidden": 32, "activation": "relu"},
                         loss={"name": "label_smoothing"}, optimizer={"name": "lion"}, scheduler={"name": "cosine"},
                         lr=2e-4)
    assert [step for step, _ in reporter.intermediates] == [1, 2]
    expected = {"val_macro_f1", "val_accuracy", "test_macro_f1", "test_accuracy", "train_loss", "best_epoch"}
    assert expected <= set(metrics)
    assert 0.0 <= metrics["test_macro_f1"] <= 1.0 and metrics["n_train"] == 64
    assert metrics["val_macro_f1"] == max(value for _, value in reporter.intermediates)
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert rows[0]["test_macro_f1"] == metrics["test_macro_f1"]
    assert [point[0] for point in reporter.metric_points] == [1, 2]


def test_a_pruned_trial_stops_with_exit_code_3(minilm: str, sentences_csv: Path) -> None:
    reporter = MemoryReporter(prune_after=1)
    with pytest.raises(TaskFailure) as caught:
        train(sentences_csv, reporter, encoder=minilm, epochs=3)
    assert caught.value.exit_code == EXIT_PRUNED and len(reporter.intermediates) == 1


def test_evidence_spans_with_adafactor(minilm: str, evidence_csv: Path) -> None:
    metrics, _ = train(evidence_csv, task="span", encoder=minilm, epochs=1, max_length=48,
                       optimizer={"name": "adafactor"}, scheduler={"name": "one_cycle"}, loss={"name": "focal"})
    assert {"val_exact_match", "val_span_f1", "test_exact_match", "test_span_f1"} <= set(metrics)
    assert 0.0 <= metrics["test_span_f1"] <= 1.0


def test_refit_on_train_and_val_evaluates_on_test_only(minilm: str, sentences_csv: Path) -> None:
    reporter = MemoryReporter()
    metrics, _ = train(sentences_csv, reporter, encoder=minilm, epochs=1, train_on=["train", "val"],
                       early_stopping_patience=1, precision="bf16")  # bf16 autocast, here on the CPU
    assert reporter.intermediates == [] and "val_macro_f1" not in metrics
    assert metrics["n_train"] == 64 and "test_macro_f1" in metrics


def test_encoder_from_the_model_registry(minilm: str, sentences_csv: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    published = publish_model(store, "minilm", Path(minilm), version="1")
    assert publish_model(store, "minilm", Path(minilm), version="1").digest == published.digest  # idempotent
    with pytest.raises(ConflictError):
        publish_model(store, "minilm", Path(minilm) / "1_Pooling", version="1")
    assert [(m.name, m.version) for m in list_models(store)] == [("minilm", "1")]
    metrics, _ = train(sentences_csv, store=store, encoder="registry:minilm", epochs=1)
    assert "test_macro_f1" in metrics
    with pytest.raises(TaskFailure) as caught:
        train(sentences_csv, store=store, encoder="registry:nosuchmodel", epochs=1)
    assert caught.value.exit_code == EXIT_CONFIG and "no model named 'nosuchmodel'" in str(caught.value)


@pytest.mark.slow
def test_a_retried_attempt_resumes_from_its_checkpoint(minilm: str, sentences_csv: Path, tmp_path: Path) -> None:
    class CrashAtEpoch2(MemoryReporter):
        def intermediate(self, step: int, value: float) -> bool:
            if step == 2:
                raise RuntimeError("the node went away")
            return super().intermediate(step, value)

    store = LocalStore(tmp_path / "store")
    with pytest.raises(RuntimeError, match="node went away"):
        train(sentences_csv, CrashAtEpoch2(), store=store, encoder=minilm, epochs=3, checkpoint=True)
    second = MemoryReporter()
    _, out = train(sentences_csv, second, store=store, encoder=minilm, epochs=3, checkpoint=True)
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert [step for step, _ in second.intermediates] == [2, 3]  # epoch 1 came from the checkpoint
    assert not list(store.list("checkpoints/"))  # cleared once the task finished


def test_bad_parameters_name_the_field(minilm: str, sentences_csv: Path) -> None:
    for params, words in (({"monitor": "test_macro_f1"}, "monitor"), ({"encoder_layers": 9}, "only 6 layers"),
                          ({"label_column": "status"}, "no column 'status'"), ({"train_on": ["val"]}, "train_on")):
        with pytest.raises(TaskFailure) as caught:
            train(sentences_csv, encoder=minilm, epochs=1, **params)
        assert caught.value.exit_code == EXIT_CONFIG and words in str(caught.value)


@pytest.mark.s3
def test_a_registry_model_in_s3_is_downloaded_once_and_verified(minilm: str, s3_store: object, tmp_path: Path) -> None:
    from ehrlab.textclf.registry import resolve_model

    publish_model(s3_store, "minilm", Path(minilm), version="2")  # type: ignore[arg-type]
    first = resolve_model("registry:minilm@2", s3_store, tmp_path / "cache")  # type: ignore[arg-type]
    assert first == tmp_path / "cache" / "minilm" / "2" and (first / "config.json").is_file()
    assert resolve_model("registry:minilm", s3_store, tmp_path / "cache") == first  # type: ignore[arg-type]
