"""The transformer arm at a tiny size on CPU: pretraining, fine-tuning, reproducibility."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ehrlab.causal import files
from ehrlab.causal.bert import CLS, PAD, UNK, Vocabulary, age_token
from ehrlab.core.runner import TaskFailure, run_local

TINY = {"hidden_size": 16, "layers": 1, "heads": 2, "intermediate_size": 32, "max_length": 24}


@pytest.fixture(scope="module")
def pretrained(meds_dir: Path) -> Path:
    path, _ = run_local("pretrain_bert", {"seed": 1, "epochs": 1, "batch_size": 128, "model": TINY, "threads": 1},
                        {"cohort": meds_dir})
    return path


def test_vocabulary_keeps_the_most_recent_codes() -> None:
    vocab = Vocabulary.build([["A", "B"], ["B", "C"], ["B"]], min_count=2)
    assert vocab.tokens[vocab.first_code:] == ["B"]
    ids = vocab.encode([["A", "B", "B", "B", "C"], ["B"]], np.array([47.0, 3.0]), max_length=4)
    index = vocab.index
    assert ids[0].tolist() == [index[CLS], index[age_token(47.0)], index["B"], index[UNK]]
    assert ids[1].tolist() == [index[CLS], index["AGE:0"], index["B"], index[PAD]]
    assert age_token(47.0) == "AGE:45" and age_token(130) == "AGE:110"


def test_pretraining_writes_an_encoder_and_its_vocabulary(pretrained: Path) -> None:
    meta = json.loads((pretrained / "meta.json").read_text())
    assert meta["device"] == "cpu" and len(meta["mlm_loss"]) == 1 and np.isfinite(meta["mlm_loss"][0])
    tokens = json.loads((pretrained / "vocab.json").read_text())["tokens"]
    assert tokens[:4] == ["[PAD]", "[CLS]", "[MASK]", "[UNK]"] and len(tokens) == meta["vocabulary"]
    assert (pretrained / "model" / "config.json").is_file()


def test_finetuning_predicts_out_of_fold_and_is_reproducible(simulated: Path, folds: Path, pretrained: Path) -> None:
    params = {"seed": 2, "epochs": 2, "batch_size": 64, "threads": 1}
    inputs = {"data": simulated, "folds": folds, "pretrained": pretrained}
    path, _ = run_local("finetune_bert", params, inputs)
    frame, meta = files.read_predictions(path)
    outcomes = pd.read_parquet(simulated / "outcomes.parquet")
    assert meta["arm"] == "bert" and meta["fold_seed"] == 7 and set(meta["curves"]) == {"fold0", "fold1", "fold2"}
    assert len(frame) == 2 * len(outcomes)
    assert frame[["ps", "probas", "cf_probas"]].stack().between(0, 1).all()
    again, _ = run_local("finetune_bert", params, inputs)
    assert pd.read_parquet(again / "predictions.parquet").equals(pd.read_parquet(path / "predictions.parquet"))
    calibrated, _ = run_local("calibrate", {}, {"predictions": path})
    estimates, _ = run_local("estimate_effects", {"seed": 1, "methods": ["tmle", "aipw"], "arm": "bert"},
                             {"predictions": calibrated, "data": simulated})
    assert set(files.read_estimates(estimates)["arm"]) == {"bert"}


def test_asking_for_a_gpu_that_is_not_there_is_a_clear_error(simulated: Path, folds: Path, pretrained: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(TaskFailure, match="cuda was asked for but no GPU is visible"):
        run_local("finetune_bert", {"seed": 1, "device": "cuda"},
                  {"data": simulated, "folds": folds, "pretrained": pretrained})
