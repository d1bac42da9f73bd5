"""MIMIC-III CSV import (synthetic MIMIC-shaped fixture tables, never real data)."""

from __future__ import annotations

import gzip
import shutil
from datetime import datetime
from pathlib import Path

import meds
import pyarrow.parquet as pq
import pytest

from ehrlab.cohort import meds as M
from ehrlab.cohort import mimic3
from ehrlab.core.errors import SpecError

FIXTURES = Path(__file__).parent / "fixtures" / "mimic3"


def copy_fixtures(dest: Path, *, gzipped: bool = False) -> Path:
    dest.mkdir(parents=True)
    for source in FIXTURES.glob("*.csv"):
        if gzipped:
            with open(source, "rb") as plain, gzip.open(dest / f"{source.name}.gz", "wb") as packed:
                shutil.copyfileobj(plain, packed)
        else:
            shutil.copy(source, dest / source.name)
    return dest


def test_conversion_to_meds(tmp_path: Path) -> None:
    summary = mimic3.convert(FIXTURES, tmp_path / "meds")
    assert summary["subjects"] == 4
    assert summary["diagnoses_skipped"] == 2 and summary["births_shifted"] == 1
    for shard in M.validate(tmp_path / "meds"):
        meds.DataSchema.validate(pq.read_table(shard))
    patients = {p.subject_id: p for p in M.read_patients(tmp_path / "meds")}
    first = patients[101]
    assert (first.sex, first.birth, first.death) == ("F", datetime(2100, 3, 14), None)
    assert [(v.time, v.codes) for v in first.visits] == [
        (datetime(2130, 1, 15, 12, 30), ("ICD9CM/428.0", "ICD9CM/250.00", "ICD9CM/401.9")),
        (datetime(2131, 5, 3, 10, 0), ("ICD9CM/650",)),
    ]
    assert first.visits[1].age == pytest.approx(31.1, abs=0.1)
    died = patients[102]
    assert died.visits[0].codes == ("ICD9CM/038.9", "ICD9CM/584.9", "ICD9CM/V15.82")  # by SEQ_NUM
    assert died.death == datetime(2142, 11, 2, 14, 0)  # after the same-day discharge, not before it
    old = patients[103]
    assert old.visits[0].age == pytest.approx(91.4 + 7.6 / 365.25, abs=0.01)  # the >89 shift undone (at admission)
    assert old.visits[0].codes == ("ICD9CM/414.01", "ICD9CM/E888.9")
    assert patients[104].visits == () and patients[104].death == datetime(2150, 6, 1)


def test_gzip_and_plain_give_the_same_dataset(tmp_path: Path) -> None:
    mimic3.convert(copy_fixtures(tmp_path / "plain"), tmp_path / "a")
    mimic3.convert(copy_fixtures(tmp_path / "packed", gzipped=True), tmp_path / "b")
    for rel in ("data/00000.parquet", "metadata/codes.parquet", "metadata/subject_splits.parquet"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_lower_case_names_are_accepted(tmp_path: Path) -> None:
    source = tmp_path / "lower"
    source.mkdir()
    for path in FIXTURES.glob("*.csv"):
        text = path.read_text().splitlines()
        (source / path.name.lower()).write_text("\n".join([text[0].lower(), *text[1:]]) + "\n")
    assert mimic3.convert(source, tmp_path / "meds")["subjects"] == 4


def test_missing_table_or_column_is_a_spec_error(tmp_path: Path) -> None:
    source = copy_fixtures(tmp_path / "src")
    (source / "ADMISSIONS.csv").unlink()
    with pytest.raises(SpecError, match="ADMISSIONS not found") as caught:
        mimic3.convert(source, tmp_path / "out")
    assert caught.value.path == "ADMISSIONS"
    shutil.copy(FIXTURES / "ADMISSIONS.csv", source / "ADMISSIONS.csv")
    text = (source / "DIAGNOSES_ICD.csv").read_text().replace('"ICD9_CODE"', '"CODE"')
    (source / "DIAGNOSES_ICD.csv").write_text(text)
    with pytest.raises(SpecError, match="missing column ICD9_CODE") as caught:
        mimic3.convert(source, tmp_path / "out")
    assert caught.value.path == "ICD9_CODE" and caught.value.source.endswith("DIAGNOSES_ICD.csv")
    assert not (tmp_path / "out").exists()


def test_bad_values_are_spec_errors(tmp_path: Path) -> None:
    source = copy_fixtures(tmp_path / "src")
    patients = (source / "PATIENTS.csv").read_text()
    (source / "PATIENTS.csv").write_text(patients.replace('"2100-03-14 00:00:00"', '"14/03/2100"'))
    with pytest.raises(SpecError) as caught:
        mimic3.convert(source, tmp_path / "out")
    assert caught.value.path == "DOB"
    (source / "PATIENTS.csv").write_text(patients.replace('101,"F"', '101,"X"'))
    with pytest.raises(SpecError, match="unknown sex") as caught:
        mimic3.convert(source, tmp_path / "out")
    assert caught.value.path == "GENDER"
    with pytest.raises(SpecError, match="not a directory"):
        mimic3.convert(tmp_path / "nowhere", tmp_path / "out")
    assert not (tmp_path / "out" / "data").exists()


def test_to_meds_converts_once_and_again_when_the_tables_change(tmp_path: Path) -> None:
    source = copy_fixtures(tmp_path / "src")
    first = mimic3.to_meds(source, tmp_path / "cache")
    assert M.describe(first)["subjects"] == 4
    assert mimic3.to_meds(source, tmp_path / "cache") == first
    with open(source / "PATIENTS.csv", "a") as handle:
        handle.write('5,105,"M","2090-01-01 00:00:00",,,,0\n')
    second = mimic3.to_meds(source, tmp_path / "cache")
    assert second != first and M.describe(second)["subjects"] == 5
