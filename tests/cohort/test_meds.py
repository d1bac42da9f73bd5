"""MEDS writing, reading, validation and the patient view."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import meds
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ehrlab.cohort import meds as M
from ehrlab.core.errors import SpecError


def events(rows: list[tuple[int, datetime | None, str]]) -> pa.Table:
    return pa.table({
        "subject_id": pa.array([r[0] for r in rows], pa.int64()),
        "time": pa.array([r[1] for r in rows], pa.timestamp("us")),
        "code": pa.array([r[2] for r in rows], pa.string()),
    })


SHARD_A = events([
    (1, None, "GENDER//F"), (1, datetime(1980, 1, 1), "MEDS_BIRTH"),
    (1, datetime(2010, 5, 1), "ICD9CM/428.0"), (1, datetime(2010, 5, 1), "ICD9CM/250.00"),
    (1, datetime(2015, 1, 1), "ICD9CM/650"),
    (2, None, "GENDER//M"), (2, datetime(1990, 2, 2), "MEDS_BIRTH"), (2, datetime(2011, 1, 1), "ICD9CM/401.9"),
])
SHARD_B = events([(5, datetime(1950, 1, 1), "MEDS_BIRTH"), (5, datetime(2019, 6, 1), "ICD9CM/496"),
                  (5, datetime(2020, 1, 1), "MEDS_DEATH")])


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    M.write_dataset(root, [SHARD_A, SHARD_B], dataset_name="tiny")
    return root


def test_written_dataset_conforms_to_the_meds_schemas(dataset: Path) -> None:
    shards = sorted((dataset / "data").glob("*.parquet"))
    assert len(shards) == 2
    for shard in shards:
        meds.DataSchema.validate(pq.read_table(shard))
    meds.SubjectSplitSchema.validate(pq.read_table(dataset / meds.subject_splits_filepath))
    codes = pq.read_table(dataset / meds.code_metadata_filepath)
    meds.CodeMetadataSchema.validate(codes)
    by_code = {row["code"]: row for row in codes.to_pylist()}
    assert set(by_code) == {"GENDER//F", "GENDER//M", "MEDS_BIRTH", "MEDS_DEATH", "ICD9CM/428.0",
                            "ICD9CM/250.00", "ICD9CM/650", "ICD9CM/401.9", "ICD9CM/496"}
    assert by_code["ICD9CM/428.0"]["description"] == "Congestive heart failure, unspecified"
    assert by_code["ICD9CM/428.0"]["parent_codes"] == ["ICD9CM/428"]
    metadata = json.loads((dataset / meds.dataset_metadata_filepath).read_text())
    assert metadata["dataset_name"] == "tiny" and metadata["meds_version"] == meds.__version__
    assert M.describe(dataset) == {"subjects": 3, "events": 11, "codes": 9, "shards": 2,
                                   "time_start": "1950-01-01T00:00:00", "time_end": "2020-01-01T00:00:00"}


def test_describe_scans_datasets_written_elsewhere(dataset: Path) -> None:
    summary = M.describe(dataset)
    (dataset / M.SUMMARY_FILE).unlink()
    assert M.describe(dataset) == summary


def test_patient_view_groups_visits_and_computes_ages(dataset: Path) -> None:
    patients = list(M.read_patients(dataset))
    assert [p.subject_id for p in patients] == [1, 2, 5]
    first = patients[0]
    assert (first.birth, first.sex, first.death) == (datetime(1980, 1, 1), "F", None)
    assert [(v.time, v.codes) for v in first.visits] == [
        (datetime(2010, 5, 1), ("ICD9CM/428.0", "ICD9CM/250.00")), (datetime(2015, 1, 1), ("ICD9CM/650",))]
    assert first.visits[1].age == pytest.approx(35.0, abs=0.01)
    assert first.age_at(datetime(2010, 1, 1)) == pytest.approx(30.0, abs=0.01)
    _, codes, age = first.visits[0]
    assert codes == ("ICD9CM/428.0", "ICD9CM/250.00") and age == pytest.approx(30.33, abs=0.01)
    last = patients[2]
    assert last.sex is None and last.death == datetime(2020, 1, 1)
    assert last.codes == ["ICD9CM/496"]


def test_patients_without_visits(dataset: Path) -> None:
    (only,) = M.patients_of(SHARD_B.slice(2, 1))
    assert (only.subject_id, only.death, only.visits, only.birth) == (5, datetime(2020, 1, 1), (), None)
    (static,) = M.patients_of(SHARD_A.slice(0, 1))
    assert (static.sex, static.visits) == ("F", ())


def test_patient_view_filters_and_limits(dataset: Path) -> None:
    assert [p.subject_id for p in M.read_patients(dataset, subject_ids=[5, 2])] == [2, 5]
    assert [p.subject_id for p in M.read_patients(dataset, limit=2)] == [1, 2]
    assert list(M.read_patients(dataset, subject_ids=[999])) == []


def test_demographics_and_subject_ids(dataset: Path) -> None:
    table = M.read_demographics(dataset)
    assert table.to_pylist() == [
        {"subject_id": 1, "birth": datetime(1980, 1, 1), "death": None, "sex": "F"},
        {"subject_id": 2, "birth": datetime(1990, 2, 2), "death": None, "sex": "M"},
        {"subject_id": 5, "birth": datetime(1950, 1, 1), "death": datetime(2020, 1, 1), "sex": None},
    ]
    assert M.subject_ids(dataset).tolist() == [1, 2, 5]


def test_reader_accepts_other_meds_spellings(tmp_path: Path) -> None:
    """Foreign MEDS: nanosecond times, int32 ids, dictionary codes, nested shard folders, no metadata."""
    root = tmp_path / "foreign"
    (root / "data" / "train").mkdir(parents=True)
    table = pa.table({
        "subject_id": pa.array([7, 7], pa.int32()),
        "time": pa.array([datetime(2000, 1, 1), datetime(2001, 1, 1)], pa.timestamp("ns")),
        "code": pa.array(["MEDS_BIRTH", "ICD9CM/401.9"]).dictionary_encode(),
        "numeric_value": pa.array([None, 1.5], pa.float64()),
        "text_value": pa.array([None, "x"], pa.large_string()),
    })
    pq.write_table(table, root / "data" / "train" / "0.parquet")
    (patient,) = M.read_patients(root)
    assert patient.birth == datetime(2000, 1, 1) and patient.visits[0].codes == ("ICD9CM/401.9",)
    (shard,) = M.iter_shards(root)
    assert shard.schema == M.DATA_SCHEMA
    assert M.describe(root)["subjects"] == 1


@pytest.mark.parametrize("missing", ["subject_id", "time", "code"])
def test_missing_column_is_a_spec_error_naming_file_and_column(tmp_path: Path, missing: str) -> None:
    root = tmp_path / "bad"
    (root / "data").mkdir(parents=True)
    pq.write_table(SHARD_A.drop_columns([missing]), root / "data" / "0.parquet")
    with pytest.raises(SpecError) as caught:
        list(M.read_patients(root))
    assert caught.value.path == missing
    assert caught.value.source.endswith("data/0.parquet")
    assert f"missing required MEDS column '{missing}'" in str(caught.value)


def test_unusable_column_type_and_empty_datasets_are_spec_errors(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    (root / "data").mkdir(parents=True)
    with pytest.raises(SpecError, match="no parquet shards"):
        M.validate(root)
    with pytest.raises(SpecError, match="data is missing"):
        M.validate(tmp_path)
    with pytest.raises(SpecError, match="not a directory"):
        M.validate(tmp_path / "nowhere")
    pq.write_table(SHARD_A.set_column(1, "time", pa.array(["x"] * SHARD_A.num_rows)), root / "data" / "0.parquet")
    with pytest.raises(SpecError, match="'time' has type string") as caught:
        M.describe(root)
    assert caught.value.path == "time"
    (root / "data" / "0.parquet").write_bytes(b"not parquet")
    with pytest.raises(SpecError, match="not a readable parquet file"):
        M.validate(root)


def test_writer_leaves_nothing_when_a_shard_is_bad(tmp_path: Path) -> None:
    root = tmp_path / "out"
    unsorted = events([(3, datetime(2001, 1, 1), "A"), (3, datetime(2000, 1, 1), "B")])
    with pytest.raises(ValueError, match="not sorted by time"):
        M.write_dataset(root, [SHARD_A, unsorted], dataset_name="x")
    assert not (root / "data").exists() and not (root / "metadata").exists()
    with pytest.raises(ValueError, match="more than one shard"):
        M.write_dataset(root, [SHARD_A, SHARD_A], dataset_name="x")
    assert not (root / "data").exists()
    M.write_dataset(root, [SHARD_A], dataset_name="x")
    with pytest.raises(FileExistsError):
        M.write_dataset(root, [SHARD_A], dataset_name="x")


def test_default_splits_depend_only_on_the_subject() -> None:
    ids = np.arange(1, 20_001, dtype=np.int64)
    splits = M.default_splits(ids)
    assert np.array_equal(M.default_splits(ids[::-1]), splits[::-1])
    shares = {name: float(np.mean(splits == name)) for name in M.SPLITS}
    assert shares["train"] == pytest.approx(0.8, abs=0.01) and shares["held_out"] == pytest.approx(0.1, abs=0.01)


def test_same_input_gives_identical_bytes(tmp_path: Path) -> None:
    for name in ("one", "two"):
        M.write_dataset(tmp_path / name, [SHARD_A, SHARD_B], dataset_name="x")
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert files
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel
