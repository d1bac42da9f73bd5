"""Task `calibrate`: beta calibration of cross-fitted predictions, with the reference system's fallback.

For each held-out fold and each target (the propensity score against the exposure; each outcome
model's factual predictions against the outcome): fit a beta calibration map (Kull et al. 2017, the
a, b, m parametrisation) on the other folds' out-of-fold predictions, apply it to this fold (the
counterfactual predictions get the same map). Where the calibrated predictions do not lower the
Brier score on the held-out fold, that fold keeps the raw ones. Everything ends clipped to
[clip, 1 - clip].
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from betacal import BetaCalibration

from ehrlab.causal import files
from ehrlab.causal.kinds import CalibrateParams
from ehrlab.core.context import TaskContext


def brier(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((probabilities - labels) ** 2))


def fit_beta(probabilities: np.ndarray, labels: np.ndarray, clip: float) -> BetaCalibration:
    calibrator = BetaCalibration(parameters="abm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's convergence chatter on near-separable folds
        calibrator.fit(np.clip(probabilities, clip, 1 - clip).reshape(-1, 1), labels)
    return calibrator


def apply_beta(calibrator: BetaCalibration, probabilities: np.ndarray, clip: float) -> np.ndarray:
    return np.asarray(calibrator.predict(np.clip(probabilities, clip, 1 - clip).reshape(-1, 1)), dtype=float)


Calibrated = tuple[np.ndarray, list[np.ndarray], list[dict[str, Any]]]


def calibrate_cross_fitted(probabilities: np.ndarray, labels: np.ndarray, folds: np.ndarray, clip: float,
                           also: tuple[np.ndarray, ...] = ()) -> Calibrated:
    """Calibrated `probabilities` (and the same map applied to each array in `also`), with a record per fold."""
    calibrated = probabilities.astype(float).copy()
    extra = [values.astype(float).copy() for values in also]
    record = []
    for fold in np.unique(folds):
        test = folds == fold
        calibrator = fit_beta(probabilities[~test], labels[~test], clip)
        candidate = apply_beta(calibrator, probabilities[test], clip)
        raw_score, new_score = brier(probabilities[test], labels[test]), brier(candidate, labels[test])
        used = new_score < raw_score
        if used:
            calibrated[test] = candidate
            for target, source in zip(extra, also, strict=True):
                target[test] = apply_beta(calibrator, source[test], clip)
        record.append({"fold": int(fold), "brier_raw": raw_score, "brier_calibrated": new_score,
                       "used": bool(used)})
    return (np.clip(calibrated, clip, 1 - clip), [np.clip(values, clip, 1 - clip) for values in extra], record)


def calibrate(ctx: TaskContext) -> None:
    p: CalibrateParams = ctx.params  # type: ignore[assignment]
    frame, meta = files.read_predictions(ctx.inputs["predictions"])
    report: dict[str, Any] = {"method": p.method, "clip": p.clip}
    frame = frame.sort_values(["outcome", "subject_id"], ignore_index=True)
    if p.method == "none":
        for column in ("ps", "probas", "cf_probas"):
            frame[column] = np.clip(frame[column].to_numpy(), p.clip, 1 - p.clip)
    else:
        # the propensity score is the same for every outcome: calibrate it once, on the first outcome's rows
        first = frame["outcome"] == frame["outcome"].iloc[0]
        patients = frame[first]
        ps, _, report["ps"] = calibrate_cross_fitted(patients["ps"].to_numpy(), patients["exposure"].to_numpy(),
                                                     patients["fold"].to_numpy(), p.clip)
        ps_by_subject = pd.Series(ps, index=patients["subject_id"].to_numpy())
        frame["ps"] = ps_by_subject.reindex(frame["subject_id"].to_numpy()).to_numpy()
        report["outcomes"] = {}
        for name, rows in frame.groupby("outcome", sort=False):
            probas, (cf_probas,), report["outcomes"][name] = calibrate_cross_fitted(
                rows["probas"].to_numpy(), rows["y"].to_numpy(), rows["fold"].to_numpy(), p.clip,
                also=(rows["cf_probas"].to_numpy(),))
            frame.loc[rows.index, "probas"] = probas
            frame.loc[rows.index, "cf_probas"] = cf_probas
        for step, (target, folds) in enumerate([("exposure", report["ps"]), *report["outcomes"].items()]):
            ctx.report_metrics(step, {"brier_raw": float(np.mean([f["brier_raw"] for f in folds])),
                                      "brier_calibrated": float(np.mean([f["brier_calibrated"] for f in folds]))},
                               target=target)
    files.write_predictions(ctx.output_dir, frame, {**meta, "calibration": report})
