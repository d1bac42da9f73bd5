"""Stage 2 on the fixture cohort: folds, the CatBoost arm, calibration, estimation and the aggregate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ehrlab.causal import files
from ehrlab.causal.calibration import brier, calibrate_cross_fitted
from ehrlab.causal.folds import assign_folds
from ehrlab.causal.kinds import ESTIMATION_METHODS
from ehrlab.core.artifacts.local import LocalStore
from ehrlab.core.runner import TaskFailure, run_local
from tests.causal.conftest import EXPERIMENT

CATBOOST = {"seed": 5, "iterations": 40, "max_codes": 50, "threads": 1}


@pytest.fixture(scope="module")
def predictions(simulated: Path, folds: Path) -> Path:
    path, _ = run_local("train_catboost", CATBOOST, {"data": simulated, "folds": folds})
    return path


@pytest.fixture(scope="module")
def calibrated(predictions: Path) -> Path:
    path, _ = run_local("calibrate", {}, {"predictions": predictions})
    return path


def test_folds_are_stratified_reproducible_and_reshuffled(simulated: Path, folds: Path) -> None:
    meta = json.loads((folds / "folds.json").read_text())
    assert meta["seed"] == 7 and meta["n_folds"] == 3
    table = pd.read_parquet(folds / "folds.parquet")
    exposure = pd.read_parquet(simulated / "outcomes.parquet").set_index("subject_id")["exposure"]
    exposed_per_fold = table.assign(a=exposure.reindex(table["subject_id"]).to_numpy()).groupby("fold")["a"].sum()
    assert exposed_per_fold.max() - exposed_per_fold.min() <= 1
    again, _ = run_local("prepare_folds", {"seed": 7, "n_folds": 3}, {"data": simulated})
    assert pd.read_parquet(again / "folds.parquet").equals(table)
    other, _ = run_local("prepare_folds", {"seed": 8, "n_folds": 3}, {"data": simulated})
    assert (pd.read_parquet(other / "folds.parquet")["fold"] != table["fold"]).mean() > 0.4


def test_assign_folds_balances_every_stratum() -> None:
    strata = np.r_[np.zeros(100, int), np.ones(11, int)]
    folds = assign_folds(strata, 5, seed=3)
    assert sorted(np.bincount(folds[strata == 1], minlength=5)) == [2, 2, 2, 2, 3]
    assert np.bincount(folds[strata == 0], minlength=5).tolist() == [20] * 5


def test_a_fold_with_one_class_only_names_the_fold_and_the_label(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rare = np.zeros(40, int)
    rare[:2] = 1  # two events cannot reach three folds
    pd.DataFrame({"subject_id": np.arange(40), "exposure": np.tile([0, 1], 20), "rare": rare}).to_parquet(
        data / "outcomes.parquet")
    (data / "truth.json").write_text(json.dumps({"outcomes": {"rare": {}}}))
    store = LocalStore(tmp_path / "store")
    with pytest.raises(TaskFailure, match=r"fold \d has only one class of rare \(all \d+ patients are 0\)"):
        run_local("prepare_folds", {"seed": 1, "n_folds": 3}, {"data": data}, store=store)
    assert not list(store.list("artifacts"))


def test_catboost_predicts_every_patient_once_per_outcome_out_of_fold(simulated: Path, predictions: Path) -> None:
    frame, meta = files.read_predictions(predictions)
    outcomes = pd.read_parquet(simulated / "outcomes.parquet")
    assert meta["fold_seed"] == 7 and meta["arm"] == "baseline" and meta["n_folds"] == 3
    assert sorted(frame["outcome"].unique()) == ["effect", "null"]
    for name, rows in frame.groupby("outcome"):
        rows = rows.sort_values("subject_id")
        assert rows["subject_id"].tolist() == outcomes["subject_id"].tolist()
        assert rows["y"].tolist() == outcomes[name].tolist()
        assert rows["probas"].between(0, 1).all() and rows["cf_probas"].between(0, 1).all()
        assert (rows["probas"] != rows["cf_probas"]).mean() > 0.5
    assert len(list((predictions / "models").glob("*.cbm"))) == 3 * 3  # folds x (propensity + 2 outcomes)
    assert set(meta["metrics"]) == {f"fold{f}/{t}" for f in range(3) for t in ("exposure", "null", "effect")}


def test_catboost_is_reproducible(simulated: Path, folds: Path, predictions: Path) -> None:
    again, _ = run_local("train_catboost", CATBOOST, {"data": simulated, "folds": folds})
    assert pd.read_parquet(again / "predictions.parquet").equals(pd.read_parquet(predictions / "predictions.parquet"))


def test_catboost_optional_tuning_records_the_chosen_settings(simulated: Path, folds: Path) -> None:
    path, _ = run_local("train_catboost", {**CATBOOST, "iterations": 10, "tuning": {"n_trials": 1}},
                        {"data": simulated, "folds": folds})
    tuned = json.loads((path / "meta.json").read_text())["tuned"]
    assert set(tuned) == {"depth", "learning_rate", "l2_leaf_reg"}


def test_beta_calibration_repairs_distorted_probabilities_and_falls_back_otherwise() -> None:
    rng = np.random.default_rng(1)
    truth = rng.uniform(0.05, 0.95, 4000)
    labels = (rng.random(4000) < truth).astype(int)
    folds = rng.integers(0, 4, 4000)
    distorted = truth ** 3
    calibrated, _, record = calibrate_cross_fitted(distorted, labels, folds, 1e-8)
    assert all(fold["used"] for fold in record)
    assert brier(calibrated, labels) < brier(distorted, labels) - 0.01
    # already calibrated: wherever the map does not lower the held-out Brier score the raw values stay
    same, (other,), record = calibrate_cross_fitted(truth, labels, folds, 1e-8, also=(1 - truth,))
    for fold in record:
        rows = folds == fold["fold"]
        assert fold["used"] == (fold["brier_calibrated"] < fold["brier_raw"])
        if not fold["used"]:
            assert np.array_equal(same[rows], truth[rows]) and np.array_equal(other[rows], 1 - truth[rows])
    clipped, _, _ = calibrate_cross_fitted(np.r_[np.zeros(10), np.ones(10)], np.r_[np.zeros(10), np.ones(10)],
                                           np.tile([0, 1], 10), 1e-8)
    assert clipped.min() >= 1e-8 and clipped.max() <= 1 - 1e-8


def test_calibrate_task_keeps_the_table_and_records_each_fold(predictions: Path, calibrated: Path) -> None:
    raw, _ = files.read_predictions(predictions)
    frame, meta = files.read_predictions(calibrated)
    assert len(frame) == len(raw) and frame["ps"].between(1e-8, 1 - 1e-8).all()
    assert set(meta["calibration"]["outcomes"]) == {"null", "effect"} and len(meta["calibration"]["ps"]) == 3
    # one propensity score per patient, whatever the outcome
    assert frame.groupby("subject_id")["ps"].nunique().max() == 1


def test_estimate_effects_rows_score_every_method_against_the_truth(simulated: Path, calibrated: Path) -> None:
    path, _ = run_local("estimate_effects", {"seed": 3, "n_bootstrap": 20, "experiment": EXPERIMENT,
                                             "outer_run": 2, "inner_run": 1, "arm": "baseline"},
                        {"predictions": calibrated, "data": simulated})
    rows = files.read_estimates(path)
    truth = json.loads((simulated / "truth.json").read_text())["outcomes"]
    assert len(rows) == 2 * len(ESTIMATION_METHODS)
    assert set(rows["outcome"]) == {"null", "effect"}          # "null" stays a name, not a missing value
    for _, row in rows.iterrows():
        expected = truth[row["outcome"]]["true_risk_ratio" if row["method"] == "unadjusted_rr" else "true_effect"]
        assert row["true_effect"] == pytest.approx(expected)
        assert row["ci95_lower"] <= row["effect"] <= row["ci95_upper"] or row["method"].endswith("_bootstrap")
        assert row["covered"] == (row["ci95_lower"] <= row["true_effect"] <= row["ci95_upper"])
    assert (rows["experiment"] == EXPERIMENT).all() and (rows["fold_seed"] == 7).all()
    results = [json.loads(line) for line in (path / "results.jsonl").read_text().splitlines()]
    assert len(results) == len(rows) and {"effect", "true_effect", "std_err", "ci95_lower"} <= set(results[0])


def _estimates(directory: Path, outer_run: int, inner_run: int, effect: float, half_width: float) -> Path:
    directory.mkdir(parents=True)
    pd.DataFrame([{"experiment": "e", "outer_run": outer_run, "inner_run": inner_run, "arm": "baseline",
                   "outcome": "null", "method": "tmle", "estimand": "risk_difference", "effect": effect,
                   "true_effect": 0.0, "std_err": half_width / 1.96, "ci95_lower": effect - half_width,
                   "ci95_upper": effect + half_width, "covered": abs(effect) <= half_width, "n": 100,
                   "n_exposed": 30, "fold_seed": 1, "note": ""}]).to_csv(directory / "estimates.csv", index=False)
    return directory


def test_aggregate_computes_coverage_bias_rmse_and_spreads(tmp_path: Path) -> None:
    effects = {(1, 1): 0.10, (1, 2): 0.20, (2, 1): -0.10, (2, 2): 0.00}
    inputs = {f"e{r}{k}": _estimates(tmp_path / f"e{r}{k}", r, k, value, 0.15) for (r, k), value in effects.items()}
    path, _ = run_local("aggregate_estimates", {"title": "test"}, inputs)
    summary = pd.read_csv(path / "summary.csv", keep_default_na=False).iloc[0]
    assert summary["estimates"] == 4 and summary["outer_runs"] == 2
    assert summary["bias"] == pytest.approx(0.05)
    assert summary["rmse"] == pytest.approx(np.sqrt((0.01 + 0.04 + 0.01 + 0) / 4))
    assert summary["coverage"] == pytest.approx(0.75) and summary["covered"] == 3
    assert summary["within_run_sd"] == pytest.approx(np.mean([np.std([0.1, 0.2], ddof=1), np.std([-0.1, 0], ddof=1)]))
    assert summary["across_run_sd"] == pytest.approx(np.std([0.15, -0.05], ddof=1))
    assert summary["rejects_null"] == pytest.approx(0.25)
    runs = pd.read_csv(path / "outer_runs.csv", keep_default_na=False)
    assert runs["mean_effect"].tolist() == pytest.approx([0.15, -0.05])
    table = (path / "estimates.md").read_text()
    assert "| null | baseline | tmle | 0.0000 | 0.0500 | 0.0500 |" in table and "75% (3/4)" in table
    for name in ("estimates_e.png", "coverage.png"):
        assert (path / name).read_bytes()[:4] == b"\x89PNG"
    assert len((path / "results.jsonl").read_text().splitlines()) == 1


def test_aggregate_without_any_estimates_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(TaskFailure, match="no estimates among the inputs"):
        run_local("aggregate_estimates", {}, {"a": tmp_path / "empty"})


def test_predictions_from_another_cohort_are_rejected(tmp_path: Path, simulated: Path, calibrated: Path) -> None:
    frame = pd.read_parquet(calibrated / "predictions.parquet")
    frame.loc[0, "subject_id"] = 10**9
    (tmp_path / "p").mkdir()
    frame.to_parquet(tmp_path / "p" / "predictions.parquet")
    store = LocalStore(tmp_path / "store")
    with pytest.raises(TaskFailure, match="predictions name patients the simulated outcomes do not have"):
        run_local("estimate_effects", {"seed": 1}, {"predictions": tmp_path / "p", "data": simulated}, store=store)
    assert not list(store.list("artifacts"))
