"""Task `prepare_folds`: cross-fitting folds, reshuffled with an explicit seed that is recorded.

Each inner run of a causal batch gets its own seed, so every arm really sees new folds (the reference
system reshuffled only for its transformer arm). Folds are stratified by exposure; every fold must
hold both classes of the exposure and of every outcome, or the models cannot be fitted on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ehrlab.causal import files
from ehrlab.causal.kinds import PrepareFoldsParams
from ehrlab.core.context import TaskContext
from ehrlab.core.errors import SpecError


def assign_folds(strata: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """A fold in [0, n_folds) per row: each stratum shuffled with `seed`, then dealt out in turn."""
    rng = np.random.default_rng(seed)
    folds = np.empty(len(strata), dtype=np.int64)
    for value in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == value))
        folds[members] = (np.arange(len(members)) + rng.integers(n_folds)) % n_folds
    return folds


def stratified_holdout(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask selecting `fraction` of each class (at least one of each)."""
    mask = np.zeros(len(labels), dtype=bool)
    for value in (0, 1):
        members = rng.permutation(np.flatnonzero(labels == value))
        mask[members[:max(1, round(fraction * len(members)))]] = True
    return mask


def require_both_classes(labels: np.ndarray, what: str, where: str) -> None:
    """Raises a SpecError unless `labels` holds both 0 and 1."""
    positives = int(np.sum(labels))
    if positives == 0 or positives == len(labels):
        only = "0" if positives == 0 else "1"
        raise SpecError(f"{where} has only one class of {what} (all {len(labels)} patients are {only}): "
                        "the cohort is too small or the event too rare for this many folds")


def check_folds(frame: pd.DataFrame, folds: np.ndarray, n_folds: int, labels: list[str]) -> None:
    for fold in range(n_folds):
        in_fold = folds == fold
        if not in_fold.any():
            raise SpecError(f"fold {fold} is empty: {len(frame)} patients cannot fill {n_folds} folds")
        for label in labels:
            require_both_classes(frame[label].to_numpy()[in_fold], label, f"fold {fold}")
            require_both_classes(frame[label].to_numpy()[~in_fold], label, f"the training folds of fold {fold}")


def prepare_folds(ctx: TaskContext) -> None:
    p: PrepareFoldsParams = ctx.params  # type: ignore[assignment]
    frame = files.read_outcomes(ctx.inputs["data"])
    labels = ["exposure", *files.outcome_names(ctx.inputs["data"])]
    folds = assign_folds(frame["exposure"].to_numpy(), p.n_folds, p.seed)
    check_folds(frame, folds, p.n_folds, labels)
    pd.DataFrame({"subject_id": frame["subject_id"], "fold": folds}).to_parquet(ctx.output_dir / files.FOLDS,
                                                                               index=False)
    counts = {str(f): {label: [int((frame[label].to_numpy()[folds == f] == v).sum()) for v in (0, 1)]
                       for label in labels} for f in range(p.n_folds)}
    files.write_json(ctx.output_dir / files.FOLDS_META, {"seed": p.seed, "n_folds": p.n_folds, "patients": len(frame),
                                                   "class_counts": counts})
