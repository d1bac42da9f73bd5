"""Patient histories before the index date, read from MEDS shards one at a time.

For each patient and diagnosis code: the last occurrence before the index date, weighted
`2^(-Δdays / half_life_days)` (6000 days in the reference system). The analysis cohort is the patients
with a known birth, no death on or before the index date and at least `min_codes` distinct codes
before it. Also kept: the chronological code sequence (for the transformer arm) and age at index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

from ehrlab.cohort.meds import BIRTH, DEATH, iter_shards

DAYS_PER_YEAR = 365.25


@dataclass
class History:
    """The analysis cohort's history features, aligned on `subject_id` (sorted ascending)."""

    subject_id: np.ndarray           # (n,) int64
    age: np.ndarray                  # (n,) years at the index date
    codes: list[str]                 # the vocabulary: distinct codes seen in the cohort, sorted
    patient: np.ndarray              # (m,) row in subject_id of each (patient, code) pair
    code: np.ndarray                 # (m,) column in codes
    days_before: np.ndarray          # (m,) days from the last occurrence to the index date (> 0)
    weight: np.ndarray               # (m,) 2^(-days_before / half_life)
    sequences: list[list[str]]       # (n,) codes in time order (same code on the same day once)
    screened: int                    # patients read before the eligibility rules

    def __len__(self) -> int:
        return len(self.subject_id)

    def matrix(self, values: np.ndarray | None = None) -> sparse.csr_matrix:
        """Patients x codes, holding `values` (default: the recency weights)."""
        data = self.weight if values is None else values
        return sparse.csr_matrix((data, (self.patient, self.code)), shape=(len(self), len(self.codes)))


def _as_timestamp(index_date: date) -> pa.Scalar:
    return pa.scalar(datetime(index_date.year, index_date.month, index_date.day), pa.timestamp("us"))


def _first_time(events: pa.Table, code: str) -> pa.Table:
    grouped = events.filter(pc.equal(events["code"], code)).group_by("subject_id").aggregate([("time", "min")])
    return pa.table({"subject_id": grouped["subject_id"], "time": grouped["time_min"]})


def _diagnoses(events: pa.Table, cutoff: pa.Scalar, prefixes: Sequence[str]) -> pa.Table:
    keep = pc.and_(pc.less(events["time"], cutoff), pc.invert(pc.starts_with(events["code"], "MEDS_")))
    if prefixes:
        matches = [pc.starts_with(events["code"], prefix) for prefix in prefixes]
        any_prefix = matches[0]
        for match in matches[1:]:
            any_prefix = pc.or_(any_prefix, match)
        keep = pc.and_(keep, any_prefix)
    return events.filter(pc.fill_null(keep, False))


def read_history(meds_root: Path, *, index_date: date, code_prefixes: Sequence[str] = (),
                 half_life_days: float = 6000.0, min_codes: int = 3) -> History:
    """Reads every shard (one at a time, so memory follows the largest shard) and applies the cohort rules."""
    cutoff = _as_timestamp(index_date)
    last_parts, sequence_parts, birth_parts, death_parts = [], [], [], []
    screened: set[int] = set()
    for shard in iter_shards(meds_root):  # validated and cast to the MEDS schema, one shard at a time
        events = shard.select(["subject_id", "time", "code"])
        screened.update(pc.unique(events["subject_id"]).to_pylist())
        birth_parts.append(_first_time(events, BIRTH))
        death_parts.append(_first_time(events, DEATH))
        diagnoses = _diagnoses(events, cutoff, code_prefixes)
        last = diagnoses.group_by(["subject_id", "code"]).aggregate([("time", "max")])
        last_parts.append(pa.table({"subject_id": last["subject_id"], "code": last["code"], "time": last["time_max"]}))
        daily = diagnoses.group_by(["subject_id", "time", "code"]).aggregate([])
        sequence_parts.append(daily.sort_by([("subject_id", "ascending"), ("time", "ascending"),
                                             ("code", "ascending")]))
    births = pa.concat_tables(birth_parts).to_pandas().groupby("subject_id")["time"].min()
    deaths = pa.concat_tables(death_parts).to_pandas().groupby("subject_id")["time"].min()
    last = pa.concat_tables(last_parts).to_pandas()

    index_time = np.datetime64(cutoff.as_py(), "us")
    distinct = last.groupby("subject_id").size()
    eligible = distinct.index[distinct.to_numpy() >= min_codes]
    eligible = eligible[np.isin(eligible, births.index)]
    eligible = eligible[(births.reindex(eligible).to_numpy() < index_time)]
    dead = deaths.index[deaths.to_numpy() <= index_time]
    subject_id = np.sort(np.setdiff1d(eligible.to_numpy(np.int64), dead.to_numpy(np.int64)))

    last = last[last["subject_id"].isin(subject_id)]
    codes = sorted(last["code"].unique().tolist())
    code_position = {code: i for i, code in enumerate(codes)}
    days = (index_time - last["time"].to_numpy("datetime64[us]")) / np.timedelta64(1, "D")
    age = (index_time - births.reindex(subject_id).to_numpy("datetime64[us]")) / np.timedelta64(1, "D")

    sequences = pa.concat_tables(sequence_parts).to_pandas()
    sequences = sequences[sequences["subject_id"].isin(subject_id)]
    grouped = sequences.groupby("subject_id", sort=True)["code"].agg(list)
    return History(
        subject_id=subject_id,
        age=age / DAYS_PER_YEAR,
        codes=codes,
        patient=np.searchsorted(subject_id, last["subject_id"].to_numpy(np.int64)),
        code=last["code"].map(code_position).to_numpy(np.int64),
        days_before=days.astype(np.float64),
        weight=np.exp2(-days / half_life_days),
        sequences=grouped.reindex(subject_id).tolist(),
        screened=len(screened),
    )
