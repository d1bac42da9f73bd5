"""The files the causal task kinds pass to each other, and their readers and writers.

simulate_outcomes -> cohort.parquet (subject_id, age, n_codes), history.parquet (subject_id, code,
                     days_before, weight), sequences.parquet (subject_id, codes), outcomes.parquet
                     (subject_id, exposure, one 0/1 column per outcome), counterfactuals.parquet
                     (subject_id, propensity, P1_/P0_/Y1_/Y0_<outcome>), truth.json
prepare_folds     -> folds.parquet (subject_id, fold), folds.json
train_catboost, finetune_bert, calibrate
                  -> predictions.parquet, one row per patient and outcome:
                     subject_id, fold, outcome, exposure, ps, y, probas (at the observed exposure),
                     cf_probas (at the flipped exposure); meta.json says how they were made
estimate_effects  -> estimates.csv (one row per method and outcome)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ehrlab.core.errors import SpecError

COHORT = "cohort.parquet"
HISTORY = "history.parquet"
SEQUENCES = "sequences.parquet"
OUTCOMES = "outcomes.parquet"
COUNTERFACTUALS = "counterfactuals.parquet"
TRUTH = "truth.json"
FOLDS = "folds.parquet"
FOLDS_META = "folds.json"
PREDICTIONS = "predictions.parquet"
META = "meta.json"
ESTIMATES = "estimates.csv"

PREDICTION_COLUMNS = ("subject_id", "fold", "outcome", "exposure", "ps", "y", "probas", "cf_probas")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def write_json(path: Path, value: Any) -> None:
    Path(path).write_text(json.dumps(value, indent=2, sort_keys=True, default=float) + "\n")


def require_file(directory: Path, name: str, what: str) -> Path:
    path = Path(directory) / name
    if not path.is_file():
        raise SpecError(f"{what}: {name} is missing from {directory}")
    return path


def read_data(data_dir: Path, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """One of simulate_outcomes' parquet tables."""
    return pd.read_parquet(require_file(data_dir, name, "simulated outcomes"), columns=columns)


def outcome_names(data_dir: Path) -> list[str]:
    return list(read_json(require_file(data_dir, TRUTH, "simulated outcomes"))["outcomes"])


def read_outcomes(data_dir: Path) -> pd.DataFrame:
    """subject_id, exposure and the observed outcomes, sorted by subject_id."""
    return read_data(data_dir, OUTCOMES).sort_values("subject_id", ignore_index=True)


def read_folds(folds_dir: Path, subject_id: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """The fold of each patient in `subject_id` (same order) and the folds' record (seed, counts)."""
    folds = pd.read_parquet(require_file(folds_dir, FOLDS, "folds")).set_index("subject_id")["fold"]
    missing = np.setdiff1d(subject_id, folds.index.to_numpy())
    if len(missing):
        raise SpecError(f"folds: {len(missing)} patients of the data have no fold (e.g. {missing[0]}); "
                        "the folds were made for another cohort")
    return folds.reindex(subject_id).to_numpy(np.int64), read_json(require_file(folds_dir, FOLDS_META, "folds"))


def write_predictions(output_dir: Path, predictions: pd.DataFrame, meta: dict[str, Any]) -> None:
    columns = list(PREDICTION_COLUMNS)
    frame = predictions[columns].sort_values(["outcome", "subject_id"], ignore_index=True)
    for column in ("ps", "probas", "cf_probas"):
        values = frame[column].to_numpy()
        if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
            raise ValueError(f"predictions: {column} has values outside [0, 1]")
    frame.to_parquet(Path(output_dir) / PREDICTIONS, index=False)
    write_json(Path(output_dir) / META, meta)


def read_predictions(directory: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    frame = pd.read_parquet(require_file(directory, PREDICTIONS, "predictions"))
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise SpecError(f"predictions lack column(s) {', '.join(missing)}")
    meta_path = Path(directory) / META
    return frame, (read_json(meta_path) if meta_path.is_file() else {})


TEXT_COLUMNS = ("experiment", "arm", "outcome", "method", "estimand", "note")


def read_estimates(directory: Path) -> pd.DataFrame:
    """estimates.csv with text kept as text (an outcome named `null` must not become NaN)."""
    frame = pd.read_csv(Path(directory) / ESTIMATES, keep_default_na=False, dtype={c: str for c in TEXT_COLUMNS})
    for column in frame.columns:
        if column == "covered":
            frame[column] = frame[column].map({"True": True, "False": False, True: True, False: False})
        elif column not in TEXT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def long_predictions(subject_id: np.ndarray, fold: np.ndarray, exposure: np.ndarray, ps: np.ndarray,
                     per_outcome: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """Stacks per-outcome (y, probas, cf_probas) arrays into the long predictions table."""
    parts = [pd.DataFrame({"subject_id": subject_id, "fold": fold, "outcome": name, "exposure": exposure,
                           "ps": ps, "y": y, "probas": probas, "cf_probas": cf_probas})
             for name, (y, probas, cf_probas) in per_outcome.items()]
    return pd.concat(parts, ignore_index=True)
