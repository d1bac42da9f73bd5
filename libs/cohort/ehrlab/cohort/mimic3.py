"""MIMIC-III (PATIENTS, ADMISSIONS, DIAGNOSES_ICD csv, gzip or plain) converted to MEDS.

MIMIC-III needs credentialed access and is never shipped: users point this at their own copy.
Per patient: `GENDER//F|M` (static), `MEDS_BIRTH` at DOB, every diagnosis of an admission as
`ICD9CM/<dotted code>` at that admission's discharge time (diagnoses are coded at discharge; SEQ_NUM
order, the principal diagnosis first), and `MEDS_DEATH` at the in-hospital DEATHTIME when there is one,
else at DOD (moved to the last discharge when that falls later on the same day).

MIMIC-III shifts the DOB of patients older than 89 so they appear about 300 years old; such
patients (age over 120 at their first admission) get a birth 91.4 years before it, the median age
the MIMIC-III documentation gives for that group.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ehrlab.cohort import icd9
from ehrlab.cohort.meds import BIRTH, DEATH, SEX_PREFIX, write_dataset
from ehrlab.core.errors import SpecError

TABLES = {
    "PATIENTS": ("SUBJECT_ID", "GENDER", "DOB", "DOD"),
    "ADMISSIONS": ("SUBJECT_ID", "HADM_ID", "ADMITTIME", "DISCHTIME", "DEATHTIME"),
    "DIAGNOSES_ICD": ("SUBJECT_ID", "HADM_ID", "SEQ_NUM", "ICD9_CODE"),
}
SHIFTED_AGE = 120.0
SHIFTED_BIRTH_YEARS = 91.4
_US_PER_YEAR = 365.25 * 86_400 * 1_000_000
_TIMES = {"DOB", "DOD", "ADMITTIME", "DISCHTIME", "DEATHTIME"}


def find_table(root: Path, name: str) -> Path:
    """NAME.csv.gz or NAME.csv (either case) under `root`; SpecError naming the file when absent."""
    for candidate in (f"{name}.csv.gz", f"{name}.csv", f"{name.lower()}.csv.gz", f"{name.lower()}.csv"):
        if (root / candidate).is_file():
            return root / candidate
    raise SpecError(f"MIMIC-III table {name} not found (expected {name}.csv or {name}.csv.gz)",
                    path=name, source=str(root))


def read_table(root: Path, name: str) -> pa.Table:
    """One MIMIC-III table with its needed columns, names upper-cased, times parsed; SpecError on bad input."""
    path = find_table(root, name)
    wanted = TABLES[name]
    try:
        table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
            column_types={c: pa.string() for c in ("ICD9_CODE", "icd9_code", "GENDER", "gender")},
            strings_can_be_null=True))
    except (pa.ArrowInvalid, OSError) as exc:
        raise SpecError(f"cannot read CSV: {exc}", source=str(path)) from None
    table = table.rename_columns([c.upper() for c in table.column_names])
    for column in wanted:
        if column not in table.column_names:
            raise SpecError(f"missing column {column} (has {', '.join(table.column_names)})", path=column,
                            source=str(path))
    columns = {}
    for column in wanted:
        values = table.column(column)
        if column in _TIMES:
            try:
                values = pc.strptime(values.cast(pa.string()), format="%Y-%m-%d %H:%M:%S", unit="us",
                                     error_is_null=False) if not pa.types.is_timestamp(values.type) else values
            except pa.ArrowInvalid as exc:
                raise SpecError(f"column {column}: {exc}", path=column, source=str(path)) from None
            values = values.cast(pa.timestamp("us"))
        elif column in ("SUBJECT_ID", "HADM_ID", "SEQ_NUM"):
            if not pa.types.is_integer(values.type) and values.null_count < len(values):
                raise SpecError(f"column {column} must hold integers, has {values.type}", path=column,
                                source=str(path))
            values = values.cast(pa.int64())
        columns[column] = values
    return pa.table(columns)


def _events(root: Path) -> tuple[pa.Table, dict[str, int]]:
    patients = read_table(root, "PATIENTS")
    admissions = read_table(root, "ADMISSIONS")
    diagnoses = read_table(root, "DIAGNOSES_ICD")
    notes = {"patients": patients.num_rows, "admissions": admissions.num_rows}

    # diagnoses at their admission's discharge time
    joined = diagnoses.join(admissions.select(["HADM_ID", "DISCHTIME"]), "HADM_ID", join_type="inner")
    raw = joined.column("ICD9_CODE").to_pylist()
    codes = [icd9.to_meds(c) if c and icd9.normalize(c) else None for c in raw]
    notes["diagnoses_skipped"] = sum(c is None for c in codes) + diagnoses.num_rows - joined.num_rows
    code_array = pa.array(codes, pa.string())
    keep = pc.and_(pc.is_valid(code_array), pc.is_valid(joined.column("DISCHTIME")))
    joined = joined.append_column("CODE", code_array).filter(keep)
    joined = joined.sort_by([("SUBJECT_ID", "ascending"), ("DISCHTIME", "ascending"), ("SEQ_NUM", "ascending")])

    subject = patients.column("SUBJECT_ID").to_numpy()
    birth = patients.column("DOB").cast(pa.int64()).to_numpy(zero_copy_only=False)
    first_admit = _per_subject(admissions, "ADMITTIME", subject, np.minimum)
    shifted = ~np.isnan(first_admit) & ((first_admit - birth) / _US_PER_YEAR > SHIFTED_AGE)
    birth = np.where(shifted, first_admit - SHIFTED_BIRTH_YEARS * _US_PER_YEAR, birth).astype(np.int64)
    notes["births_shifted"] = int(shifted.sum())

    death = patients.column("DOD").cast(pa.int64()).to_numpy(zero_copy_only=False)
    death = np.where(patients.column("DOD").is_null().to_numpy(zero_copy_only=False), np.nan, death)
    in_hospital = _per_subject(admissions, "DEATHTIME", subject, np.minimum)
    death = np.where(np.isnan(in_hospital), death, in_hospital)
    last_discharge = _per_subject(admissions, "DISCHTIME", subject, np.maximum)
    day = 86_400 * 1_000_000
    same_day_later = ~np.isnan(death) & (last_discharge > death) & (last_discharge // day == death // day)
    death = np.where(same_day_later, last_discharge, death)

    sexes = patients.column("GENDER").to_pylist()
    try:
        sex_codes = [f"{SEX_PREFIX}{icd9.normalize_sex(s)}" for s in sexes]
    except ValueError as exc:
        raise SpecError(str(exc), path="GENDER", source=str(find_table(root, "PATIENTS"))) from None
    dead = ~np.isnan(death)
    events = pa.concat_tables([
        pa.table({"subject_id": pa.array(subject, pa.int64()), "time": pa.nulls(len(subject), pa.timestamp("us")),
                  "code": pa.array(sex_codes, pa.string())}),
        pa.table({"subject_id": pa.array(subject, pa.int64()), "time": pa.array(birth, pa.timestamp("us")),
                  "code": pa.array([BIRTH] * len(subject), pa.string())}),
        pa.table({"subject_id": joined.column("SUBJECT_ID"), "time": joined.column("DISCHTIME"),
                  "code": joined.column("CODE")}),
        pa.table({"subject_id": pa.array(subject[dead], pa.int64()),
                  "time": pa.array(death[dead].astype(np.int64), pa.timestamp("us")),
                  "code": pa.array([DEATH] * int(dead.sum()), pa.string())}),
    ])
    known = pc.is_in(events.column("subject_id"), value_set=pa.array(subject, pa.int64()))
    notes["diagnoses_without_patient"] = int(events.num_rows - pc.sum(known).as_py())
    return events.filter(known), notes


def _per_subject(table: pa.Table, column: str, subjects: np.ndarray, reduce: Any) -> np.ndarray:
    """reduce (np.minimum/np.maximum) of a time column per subject, aligned with `subjects`; NaN if none."""
    values = table.column(column)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    ids = table.column("SUBJECT_ID").to_numpy(zero_copy_only=False)[valid]
    stamps = values.cast(pa.int64()).to_numpy(zero_copy_only=False)[valid].astype(np.float64)
    out = np.full(len(subjects), np.nan)
    order = np.argsort(subjects)
    position = np.searchsorted(subjects[order], ids)
    inside = (position < len(subjects)) & (subjects[order][np.minimum(position, len(subjects) - 1)] == ids)
    rows = order[position[inside]]
    start = np.inf if reduce is np.minimum else -np.inf
    filled = np.full(len(subjects), start)
    reduce.at(filled, rows, stamps[inside])
    out[np.isfinite(filled)] = filled[np.isfinite(filled)]
    return out


def _shards(events: pa.Table, shard_size: int) -> Iterator[pa.Table]:
    stamps = events.column("time").cast(pa.int64()).fill_null(-(1 << 62)).to_numpy()
    order = np.lexsort((stamps, events.column("subject_id").to_numpy()))
    events = events.take(pa.array(order))
    subjects = events.column("subject_id").to_numpy()
    firsts = np.flatnonzero(np.r_[True, subjects[1:] != subjects[:-1]])
    for start in range(0, len(firsts), shard_size):
        begin = firsts[start]
        end = firsts[start + shard_size] if start + shard_size < len(firsts) else len(subjects)
        yield events.slice(begin, end - begin)


def convert(source: str | Path, root: str | Path, *, shard_size: int = 50_000,
            dataset_name: str = "mimic3") -> dict[str, Any]:
    """Converts a MIMIC-III directory to a MEDS dataset at `root`; returns the summary with conversion notes."""
    source = Path(source)
    if not source.is_dir():
        raise SpecError(f"MIMIC-III source {source} is not a directory", source=str(source))
    events, notes = _events(source)
    if events.num_rows == 0:
        raise SpecError("the MIMIC-III tables hold no patients", source=str(source))
    summary = write_dataset(root, _shards(events, shard_size), dataset_name=dataset_name,
                            etl_name="ehrlab.cohort.mimic3")
    return {**summary, **notes}


def to_meds(source: str | Path, cache_dir: str | Path | None = None) -> Path:
    """A MEDS copy of a MIMIC-III directory, converted once and reused while the CSVs are unchanged.

    The copy lives under `cache_dir` (default: the system temp directory, ehrlab-mimic3/) in a folder
    named by a digest of the tables' paths, sizes and modification times.
    """
    source = Path(source).absolute()
    if not source.is_dir():
        raise SpecError(f"MIMIC-III source {source} is not a directory", source=str(source))
    digest = hashlib.sha256()
    for name in TABLES:
        path = find_table(source, name)
        info = path.stat()
        digest.update(f"{path}|{info.st_size}|{info.st_mtime_ns}\n".encode())
    cache = Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir()) / "ehrlab-mimic3"
    target = cache / digest.hexdigest()[:24]
    if (target / "metadata" / "summary.json").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=cache))
    try:
        convert(source, partial / "meds")
        try:
            os.replace(partial / "meds", target)
        except OSError:  # another process converted the same tables first
            if not (target / "metadata" / "summary.json").is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target
