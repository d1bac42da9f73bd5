"""Tabular features for the baseline arm: age summaries and one-hot codes, as one sparse matrix.

Columns: age at the index date, age at the first and at the last code before it, the number of
distinct codes, then one 0/1 column per code for the `max_codes` most frequent codes seen in at least
`min_code_count` patients. Rows follow cohort.parquet's subject_id order (ascending).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from ehrlab.causal import files
from ehrlab.causal.history import DAYS_PER_YEAR

AGE_COLUMNS = ("age", "age_first_code", "age_last_code", "n_codes")


@dataclass
class Features:
    subject_id: np.ndarray
    matrix: sparse.csr_matrix
    names: list[str]


def baseline_features(data_dir: Path, *, max_codes: int, min_code_count: int) -> Features:
    cohort = files.read_data(data_dir, files.COHORT).sort_values("subject_id", ignore_index=True)
    history = files.read_data(data_dir, files.HISTORY, columns=["subject_id", "code", "days_before"])
    subject_id = cohort["subject_id"].to_numpy(np.int64)
    row = np.searchsorted(subject_id, history["subject_id"].to_numpy(np.int64))

    span = pd.DataFrame({"row": row, "days": history["days_before"].to_numpy()}).groupby("row")["days"]
    oldest = span.max().reindex(range(len(subject_id)), fill_value=0.0).to_numpy()
    newest = span.min().reindex(range(len(subject_id)), fill_value=0.0).to_numpy()
    age = cohort["age"].to_numpy(float)
    summaries = np.column_stack([age, age - oldest / DAYS_PER_YEAR, age - newest / DAYS_PER_YEAR,
                                 cohort["n_codes"].to_numpy(float)])

    counts = history["code"].value_counts()
    counts = counts[counts >= min_code_count]
    chosen = sorted(counts.index, key=lambda code: (-counts[code], code))[:max_codes]
    column = pd.Series(np.arange(len(chosen)), index=chosen)
    kept = history["code"].isin(column.index).to_numpy()
    onehot = sparse.csr_matrix((np.ones(kept.sum(), dtype=np.float32),
                                (row[kept], column.reindex(history["code"][kept]).to_numpy())),
                               shape=(len(subject_id), len(chosen)))
    matrix = sparse.hstack([sparse.csr_matrix(summaries.astype(np.float32)), onehot], format="csr")
    return Features(subject_id, matrix, [*AGE_COLUMNS, *(f"code:{code}" for code in chosen)])


def with_exposure(matrix: sparse.csr_matrix, exposure: np.ndarray) -> sparse.csr_matrix:
    """Prepends the exposure as the first column (the outcome models' input)."""
    return sparse.hstack([sparse.csr_matrix(exposure.reshape(-1, 1).astype(np.float32)), matrix], format="csr")
