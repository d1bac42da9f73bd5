"""MEDS datasets: a streaming writer, a validating reader and the patient view other libraries use.

A MEDS dataset (the `meds` package defines the schemas) is a directory::

    data/*.parquet               events: subject_id int64, time timestamp[us], code string,
                                 numeric_value float32; each subject in one shard, sorted by time
    metadata/dataset.json        dataset name/version, ETL name/version, MEDS version
    metadata/codes.parquet       code, description, parent_codes for every code in the data
    metadata/subject_splits.parquet   subject_id, split (train / tuning / held_out)

This platform also writes `metadata/summary.json` (subjects, events, distinct codes, time span) so a
catalog can describe a dataset without scanning it; `describe` scans datasets that lack it.

Demographics follow MEDS conventions: birth is `MEDS_BIRTH` at the birth time, death `MEDS_DEATH` at the
death time, sex a static event `GENDER//F` or `GENDER//M` (time null, as static measurements are in
MEDS). Diagnoses are `ICD9CM/<dotted code>`.

The patient view (`read_patients`) groups each subject's other events by timestamp into visits:
`Patient(subject_id, birth, sex, death, visits=[Visit(time, codes, age), …], static_codes)`.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import meds
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ehrlab.cohort import icd9
from ehrlab.core.errors import SpecError

BIRTH = meds.birth_code
DEATH = meds.death_code
SEX_PREFIX = "GENDER//"
SEX_CODES = {"F": f"{SEX_PREFIX}F", "M": f"{SEX_PREFIX}M"}
SUMMARY_FILE = "metadata/summary.json"
SPLITS = (meds.train_split, meds.tuning_split, meds.held_out_split)
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)

# The data schema this platform writes: the MEDS DataSchema without the optional text_value column.
DATA_SCHEMA = pa.schema([
    pa.field("subject_id", pa.int64(), nullable=False),
    pa.field("time", pa.timestamp("us")),
    pa.field("code", pa.string(), nullable=False),
    pa.field("numeric_value", pa.float32()),
])
_US_PER_YEAR = 365.25 * 86_400 * 1_000_000
_NO_TIME = -(1 << 62)  # stands for a null time where static events sort first (before any real time)


# -- writing ----------------------------------------------------------------------------------------------

def default_splits(subject_ids: np.ndarray) -> np.ndarray:
    """train/tuning/held_out (80/10/10) per subject, from a hash of the id alone: stable under any
    sharding, ordering or sampling of the same subjects."""
    x = np.asarray(subject_ids, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):  # splitmix64: wrapping multiplication is the point
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    unit = (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    edges = np.cumsum(SPLIT_FRACTIONS)[:-1]
    return np.asarray(SPLITS)[np.searchsorted(edges, unit, side="right")]


def describe_code(code: str) -> tuple[str | None, list[str] | None]:
    """(description, parent codes) of a MEDS code for metadata/codes.parquet."""
    if code == BIRTH:
        return "Birth", None
    if code == DEATH:
        return "Death", None
    if code.startswith(SEX_PREFIX):
        return {"F": "Female", "M": "Male"}.get(code[len(SEX_PREFIX):]), None
    key = icd9.normalize(code)
    if key is None:
        return None, None
    head = 4 if key.startswith("E") else 3
    parents = [icd9.MEDS_PREFIX + icd9.dotted(key[:-1])] if len(key) > head else None
    return icd9.describe(key), parents


@dataclass(frozen=True)
class ShardStats:
    """What the metadata needs to know about one written shard."""

    path: Path
    subjects: np.ndarray
    code_counts: dict[str, int]
    events: int
    time_min: int | None
    time_max: int | None


def write_shard_file(table: pa.Table, path: Path, *, compression: str = "zstd", check_order: bool = True) -> ShardStats:
    """Writes one data shard (whole subjects, sorted by subject_id then time) and returns its stats."""
    table = conform(table, source=str(path))
    if table.num_rows == 0:
        raise ValueError(f"{path}: a MEDS shard must not be empty")
    subjects = table.column("subject_id").to_numpy()
    if check_order:
        _check_sorted(subjects, table.column("time"), str(path))
    starts = np.flatnonzero(np.r_[True, subjects[1:] != subjects[:-1]])
    counts = pc.value_counts(table.column("code").combine_chunks())
    span = pc.min_max(table.column("time"))
    pq.write_table(table, path, compression=compression, row_group_size=1 << 20)
    return ShardStats(path, subjects[starts], dict(zip(counts.field("values").to_pylist(),
                                                       counts.field("counts").to_pylist(), strict=True)),
                      table.num_rows, span["min"].value if span["min"].is_valid else None,
                      span["max"].value if span["max"].is_valid else None)


class MedsWriter:
    """Writes a MEDS dataset shard by shard (memory bounded by one shard), metadata on `close`.

    Use as a context manager: on an exception everything it wrote is removed, so a failed run leaves
    no half-written dataset. Each shard must hold whole subjects sorted by (subject_id, time); a subject
    may not appear in two shards. Shards written elsewhere (other processes) into `shard_path(i)` are
    recorded with `add`, in order.
    """

    def __init__(self, root: str | Path, *, dataset_name: str, dataset_version: str = "1",
                 etl_name: str = "ehrlab.cohort", etl_version: str = "0.1.0", compression: str = "zstd",
                 extra: Mapping[str, Any] | None = None) -> None:
        self.root = Path(root)
        if (self.root / meds.data_subdirectory).exists() or (self.root / "metadata").exists():
            raise FileExistsError(f"{self.root} already holds a MEDS dataset")
        self.data_dir = self.root / meds.data_subdirectory
        self.data_dir.mkdir(parents=True)
        (self.root / "metadata").mkdir()
        self.metadata = {"dataset_name": dataset_name, "dataset_version": dataset_version, "etl_name": etl_name,
                         "etl_version": etl_version, "meds_version": meds.__version__, **(extra or {})}
        self.compression = compression
        self.shards = 0
        self._subjects: list[np.ndarray] = []
        self._codes: Counter[str] = Counter()
        self._events = 0
        self._time_range: list[int] = []

    def __enter__(self) -> MedsWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        if kind is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            shutil.rmtree(self.root / "metadata", ignore_errors=True)

    def shard_path(self, index: int) -> Path:
        return self.data_dir / f"{index:05d}.parquet"

    def write_shard(self, table: pa.Table) -> Path:
        """Writes the next shard (columns subject_id, time, code and optionally numeric_value)."""
        stats = write_shard_file(table, self.shard_path(self.shards), compression=self.compression)
        self.add(stats)
        return stats.path

    def add(self, stats: ShardStats) -> None:
        """Records a shard written to `shard_path(self.shards)`."""
        if stats.path != self.shard_path(self.shards):
            raise ValueError(f"expected shard {self.shard_path(self.shards)}, got {stats.path}")
        self._subjects.append(stats.subjects)
        self._codes.update(stats.code_counts)
        self._events += stats.events
        self._time_range += [t for t in (stats.time_min, stats.time_max) if t is not None]
        self.shards += 1

    def close(self, splits: Mapping[int, str] | None = None) -> dict[str, Any]:
        """Writes the metadata; `splits` maps subject_id -> split (others: `default_splits`). Returns the summary."""
        subjects = np.concatenate(self._subjects) if self._subjects else np.zeros(0, np.int64)
        if len(np.unique(subjects)) != len(subjects):
            raise ValueError("a subject appears in more than one shard (or twice in one)")
        split_of = default_splits(subjects)
        if splits is not None:
            split_of = np.array([splits.get(int(s), fallback) for s, fallback in zip(subjects, split_of, strict=True)])
        order = np.argsort(subjects, kind="stable")
        split_table = pa.table({"subject_id": pa.array(subjects[order], pa.int64()),
                                "split": pa.array(split_of[order], pa.string())},
                               schema=meds.SubjectSplitSchema.schema())
        pq.write_table(split_table, self.root / meds.subject_splits_filepath)
        codes = sorted(self._codes)
        described = [describe_code(code) for code in codes]
        pq.write_table(pa.table({
            "code": pa.array(codes, pa.string()),
            "description": pa.array([d for d, _ in described], pa.string()),
            "parent_codes": pa.array([p for _, p in described], pa.list_(pa.string())),
        }), self.root / meds.code_metadata_filepath)
        (self.root / meds.dataset_metadata_filepath).write_text(json.dumps(self.metadata, indent=2) + "\n")
        summary = {
            "subjects": len(subjects), "events": self._events, "codes": len(codes), "shards": self.shards,
            "time_start": _iso(min(self._time_range)) if self._time_range else None,
            "time_end": _iso(max(self._time_range)) if self._time_range else None,
        }
        (self.root / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        return summary


def _iso(microseconds: int) -> str:
    return np.datetime64(int(microseconds), "us").astype(datetime).isoformat()


def _check_sorted(subjects: np.ndarray, time: pa.ChunkedArray, where: str) -> None:
    if len(subjects) > 1 and (np.diff(subjects) < 0).any():
        raise ValueError(f"{where}: rows are not sorted by subject_id")
    # null times (static events) sort first within a subject
    stamps = time.combine_chunks().cast(pa.int64()).fill_null(_NO_TIME).to_numpy()
    same = subjects[1:] == subjects[:-1]
    if (same & (np.diff(stamps) < 0)).any():
        raise ValueError(f"{where}: a subject's events are not sorted by time")


def write_dataset(root: str | Path, tables: Iterable[pa.Table], *, dataset_name: str,
                  splits: Mapping[int, str] | None = None, **options: Any) -> dict[str, Any]:
    """Writes shards from `tables` and the metadata; returns the summary. Nothing is left on failure."""
    with MedsWriter(root, dataset_name=dataset_name, **options) as writer:
        for table in tables:
            writer.write_shard(table)
        return writer.close(splits)


# -- reading ----------------------------------------------------------------------------------------------

_REQUIRED_TYPES: dict[str, Callable[[pa.DataType], bool]] = {
    "subject_id": pa.types.is_integer,
    "time": lambda t: pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_null(t),
    "code": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or (
        pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type))),
    "numeric_value": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_null(t)
    or pa.types.is_decimal(t),
}


def shard_paths(root: str | Path) -> list[Path]:
    """The data shards of a MEDS dataset (data/**/*.parquet, sorted); SpecError if there are none."""
    root = Path(root)
    data = root / meds.data_subdirectory
    if not root.is_dir():
        raise SpecError(f"no MEDS dataset at {root}: not a directory", source=str(root))
    if not data.is_dir():
        raise SpecError(f"not a MEDS dataset: {data} is missing", source=str(root))
    paths = sorted(data.rglob("*.parquet"))
    if not paths:
        raise SpecError(f"not a MEDS dataset: no parquet shards under {data}", source=str(root))
    return paths


def check_schema(schema: pa.Schema, source: str) -> None:
    """SpecError naming the file and column when a shard lacks a MEDS column or has an unusable type."""
    check_schema_of(schema, tuple(meds.DataSchema.required_columns()), source, what="required MEDS column")
    for column, usable in _REQUIRED_TYPES.items():
        if column in schema.names and not usable(schema.field(column).type):
            raise SpecError(f"MEDS column {column!r} has type {schema.field(column).type}, which cannot be read "
                            f"as {DATA_SCHEMA.field(column).type}", path=column, source=source)


def validate(root: str | Path) -> list[Path]:
    """Checks every shard's schema (not its rows); returns the shard paths. SpecError names file and column."""
    paths = shard_paths(root)
    for path in paths:
        try:
            schema = pq.read_schema(path)
        except (OSError, pa.ArrowException) as exc:
            raise SpecError(f"not a readable parquet file: {exc}", source=str(path)) from None
        check_schema(schema, str(path))
    return paths


def conform(table: pa.Table, *, source: str = "") -> pa.Table:
    """The table in this platform's MEDS data schema (columns cast, numeric_value added when absent)."""
    check_schema(table.schema, source)
    columns = []
    for field in DATA_SCHEMA:
        if field.name in table.column_names:
            column = table.column(field.name)
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            columns.append(column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=DATA_SCHEMA)


def iter_shards(root: str | Path, *, subject_ids: Collection[int] | None = None) -> Iterator[pa.Table]:
    """Each shard as a table in DATA_SCHEMA, optionally only the given subjects' rows."""
    wanted = None if subject_ids is None else pa.array(np.fromiter(subject_ids, np.int64), pa.int64())
    for path in validate(root):
        names = [n for n in DATA_SCHEMA.names if n in pq.read_schema(path).names]
        table = pq.read_table(path, columns=names)
        if wanted is not None:
            table = table.filter(pc.is_in(table.column("subject_id"), value_set=wanted))
        yield conform(table, source=str(path))


def describe(root: str | Path) -> dict[str, Any]:
    """subjects, events, codes (distinct), shards, time_start, time_end (ISO) of a dataset.

    Read from metadata/summary.json when this platform wrote the dataset, else computed by a scan.
    """
    summary_path = Path(root) / SUMMARY_FILE
    if summary_path.is_file():
        return json.loads(summary_path.read_text())
    paths = validate(root)
    subjects: set[int] = set()
    codes: set[str] = set()
    events, low, high = 0, None, None
    for path in paths:
        table = conform(pq.read_table(path, columns=["subject_id", "time", "code"]), source=str(path))
        subjects.update(pc.unique(table.column("subject_id")).to_pylist())
        codes.update(pc.unique(table.column("code")).to_pylist())
        events += table.num_rows
        span = pc.min_max(table.column("time"))
        if span["min"].is_valid:
            low = span["min"].value if low is None else min(low, span["min"].value)
            high = span["max"].value if high is None else max(high, span["max"].value)
    return {"subjects": len(subjects), "events": events, "codes": len(codes), "shards": len(paths),
            "time_start": _iso(low) if low is not None else None, "time_end": _iso(high) if high is not None else None}


def subject_ids(root: str | Path) -> np.ndarray:
    """Every subject id in the dataset, sorted (from subject_splits.parquet when present, else the data)."""
    splits = Path(root) / meds.subject_splits_filepath
    if splits.is_file():
        validate(root)
        return np.sort(pq.read_table(splits, columns=["subject_id"]).column("subject_id").to_numpy())
    found = [pc.unique(t.column("subject_id")).to_numpy() for t in iter_shards(root)]
    return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)


# -- the patient view -------------------------------------------------------------------------------------

class Visit(NamedTuple):
    """Events that share one timestamp: `time`, their `codes` (in data order), the patient's `age` in years
    at that time (NaN when the birth is unknown)."""

    time: datetime
    codes: tuple[str, ...]
    age: float


@dataclass(frozen=True)
class Patient:
    """One subject: birth/death times (None if absent), sex 'F'/'M' (None if absent), visits in time order,
    and static codes (null time) other than sex."""

    subject_id: int
    birth: datetime | None
    sex: str | None
    death: datetime | None
    visits: tuple[Visit, ...]
    static_codes: tuple[str, ...] = ()

    def age_at(self, when: datetime) -> float:
        """Age in years (365.25-day years) at `when`; NaN when the birth is unknown."""
        if self.birth is None:
            return float("nan")
        return (when - self.birth).total_seconds() * 1e6 / _US_PER_YEAR

    @property
    def codes(self) -> list[str]:
        """Every visit code in time order."""
        return [code for visit in self.visits for code in visit.codes]


def read_patients(root: str | Path, *, subject_ids: Collection[int] | None = None,
                  limit: int | None = None) -> Iterator[Patient]:
    """The patients of a MEDS dataset, shard by shard (memory bounded by one shard), in data order.

    subject_ids: only these subjects; limit: stop after this many patients. Events with the same time
    form one visit; MEDS_BIRTH, MEDS_DEATH and GENDER//* set birth, death and sex instead.
    """
    produced = 0
    for table in iter_shards(root, subject_ids=subject_ids):
        for patient in patients_of(table):
            if limit is not None and produced >= limit:
                return
            produced += 1
            yield patient


def patients_of(table: pa.Table) -> Iterator[Patient]:
    """The patients of one table of events (in DATA_SCHEMA), sorted by subject.

    Everything but the final assembly of Patient objects is vectorised over the whole table.
    """
    if table.num_rows == 0:
        return
    stamps = table.column("time").combine_chunks().cast(pa.int64()).fill_null(_NO_TIME).to_numpy()
    order = np.lexsort((stamps, table.column("subject_id").to_numpy()))  # stable: same-time events keep data order
    subjects, stamps = table.column("subject_id").to_numpy()[order], stamps[order]
    encoded = pc.dictionary_encode(table.column("code")).combine_chunks()
    vocabulary = encoded.dictionary.to_pylist()
    indices = encoded.indices.to_numpy()[order]
    # what each vocabulary entry means to the view: 0 a visit code, 1 birth, 2 death, 3 sex
    meaning = np.array([1 if c == BIRTH else 2 if c == DEATH else 3 if c.startswith(SEX_PREFIX) else 0
                        for c in vocabulary], dtype=np.int8)[indices]
    has_time = stamps != _NO_TIME
    starts = np.flatnonzero(np.r_[True, subjects[1:] != subjects[:-1]])
    patient = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(subjects)]))

    def first_time(kind: int) -> np.ndarray:
        rows = np.flatnonzero((meaning == kind) & has_time)
        found, first = np.unique(patient[rows], return_index=True)
        out = np.full(len(starts), _NO_TIME)
        out[found] = stamps[rows[first]]
        return out

    birth, death = first_time(1), first_time(2)
    sex_of_entry = [_sex_of(c) for c in vocabulary]
    sexes: list[str | None] = [None] * len(starts)
    for row in np.flatnonzero(meaning == 3).tolist():
        sexes[patient[row]] = sex_of_entry[indices[row]]

    words = np.array(vocabulary, dtype=object)
    timed = np.flatnonzero((meaning == 0) & has_time)
    visit_cut = np.flatnonzero(np.r_[len(timed) > 0, (patient[timed][1:] != patient[timed][:-1])
                                     | (stamps[timed][1:] != stamps[timed][:-1])])
    visit_patient = patient[timed][visit_cut]
    visit_stamp = stamps[timed][visit_cut]
    visit_birth = birth[visit_patient]
    ages = np.where(visit_birth == _NO_TIME, np.nan, (visit_stamp - visit_birth) / _US_PER_YEAR).tolist()
    times = visit_stamp.astype("datetime64[us]").astype(datetime).tolist()
    codes = words[indices[timed]].tolist()
    bounds = np.r_[visit_cut, len(timed)].tolist()
    visits_from = np.searchsorted(visit_patient, np.arange(len(starts) + 1)).tolist()
    static = np.flatnonzero((meaning == 0) & ~has_time)
    static_codes = words[indices[static]].tolist()
    static_from = np.searchsorted(patient[static], np.arange(len(starts) + 1)).tolist()
    ids = subjects[starts].tolist()
    births = [_when(b) if b != _NO_TIME else None for b in birth.tolist()]
    new_visit = functools.partial(tuple.__new__, Visit)  # Visit(...) costs a Python-level __new__ per visit
    deaths = [_when(d) if d != _NO_TIME else None for d in death.tolist()]
    for p in range(len(starts)):
        visits = tuple(new_visit((times[v], tuple(codes[bounds[v]:bounds[v + 1]]), ages[v]))
                       for v in range(visits_from[p], visits_from[p + 1]))
        yield Patient(ids[p], births[p], sexes[p], deaths[p], visits,
                      tuple(static_codes[static_from[p]:static_from[p + 1]]))


def _sex_of(code: str) -> str | None:
    if not code.startswith(SEX_PREFIX):
        return None
    try:
        return icd9.normalize_sex(code[len(SEX_PREFIX):])
    except ValueError:
        return None  # a sex this platform has no rules for (e.g. GENDER//UNKNOWN)


def _when(stamp: int) -> datetime:
    return np.datetime64(int(stamp), "us").astype(datetime)


def read_demographics(root: str | Path) -> pa.Table:
    """subject_id, birth, death (timestamps, null if absent), sex ('F'/'M'/null): one row per subject, sorted."""
    parts = [_demographics_of(table) for table in iter_shards(root)]
    return pa.concat_tables(parts).sort_by("subject_id")


def _demographics_of(table: pa.Table) -> pa.Table:
    subjects = table.column("subject_id").to_numpy()
    codes = table.column("code")
    timed = table.column("time").is_valid()
    ids = np.unique(subjects)

    def first(matches: pa.ChunkedArray, values: pa.ChunkedArray) -> pa.Array:
        """The smallest matching value per subject of `ids`, null where a subject has none."""
        rows = pa.table({"subject_id": table.column("subject_id").filter(matches), "value": values.filter(matches)})
        best = rows.group_by("subject_id").aggregate([("value", "min")])
        slot = np.full(len(ids), -1)
        slot[np.searchsorted(ids, best.column("subject_id").to_numpy())] = np.arange(best.num_rows)
        return best.column("value_min").take(pa.array(slot, mask=slot < 0))

    stamps = table.column("time").cast(pa.int64())
    birth = first(pc.and_(pc.equal(codes, BIRTH), timed), stamps)
    death = first(pc.and_(pc.equal(codes, DEATH), timed), stamps)
    sex_rows = pc.starts_with(codes, SEX_PREFIX)
    sex = first(sex_rows, pc.utf8_slice_codeunits(codes, len(SEX_PREFIX)))
    return pa.table({"subject_id": pa.array(ids, pa.int64()), "birth": birth.cast(pa.timestamp("us")),
                     "death": death.cast(pa.timestamp("us")), "sex": sex.cast(pa.string())})


def import_dataset(source: str | Path, root: str | Path, *, dataset_name: str | None = None) -> dict[str, Any]:
    """Copies any MEDS dataset into this platform's form at `root`: shards conformed to DATA_SCHEMA and sorted
    by (subject_id, time), metadata rewritten (splits kept). SpecError when the source breaks MEDS rules."""
    source = Path(source)
    validate(source)
    metadata_path = source / meds.dataset_metadata_filepath
    name = dataset_name or (json.loads(metadata_path.read_text()).get("dataset_name") if metadata_path.is_file()
                            else None) or source.name
    splits = None
    splits_path = source / meds.subject_splits_filepath
    if splits_path.is_file():
        table = pq.read_table(splits_path)
        check_schema_of(table.schema, ("subject_id", "split"), str(splits_path))
        splits = dict(zip(table.column("subject_id").to_pylist(), table.column("split").to_pylist(), strict=True))

    def sorted_shards() -> Iterator[pa.Table]:
        for table in iter_shards(source):
            if table.num_rows:
                stamps = table.column("time").cast(pa.int64()).fill_null(_NO_TIME).to_numpy()
                yield table.take(pa.array(np.lexsort((stamps, table.column("subject_id").to_numpy()))))

    try:
        return write_dataset(root, sorted_shards(), dataset_name=name, etl_name="ehrlab.cohort.meds", splits=splits)
    except ValueError as exc:
        raise SpecError(f"not a valid MEDS dataset: {exc}", source=str(source)) from None


def check_schema_of(schema: pa.Schema, columns: tuple[str, ...], source: str, *, what: str = "column") -> None:
    """SpecError naming the file and the first of `columns` it lacks."""
    for column in columns:
        if column not in schema.names:
            raise SpecError(f"missing {what} {column!r} (has {', '.join(schema.names)})", path=column, source=source)
