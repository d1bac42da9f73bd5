"""Case files (YAML/JSON) and synthetic cases from EHR patients."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrlab.core.errors import SpecError
from ehrlab.grading.cases import dump_cases, load_cases
from ehrlab.grading.model import Validation
from ehrlab.grading.synthetic import Patient, generated_cases, patients_from_meds, synthetic_cases

GOOD = """
cases:
  - name: chest-pain-001
    transcript: |
      DOCTOR: What brings you in today?
      PATIENT: I've had chest pain for three days.
    facts:
      subjective: [Chest pain for three days]
      plan: [ECG today]
    rubrics:
      - author: dr_rivera
        validation: accepted
        validated_at: 2026-03-02T10:00:00Z
        criteria:
          - {criterion: Documents chest pain for three days, weight: 3, sense: positive}
          - {criterion: States that the patient smokes, weight: 2, sense: negative}
"""


def test_yaml_and_json_case_files_load_and_round_trip(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    cases = load_cases([tmp_path])
    assert [c.name for c in cases] == ["chest-pain-001"]
    assert cases[0].rubrics[0].validation is Validation.ACCEPTED
    assert cases[0].rubrics[0].criteria[1].sense.value == "negative"
    for name in ("out.json", "out.yaml"):
        path = dump_cases(cases, tmp_path / "dumped" / name)
        assert load_cases([path]) == cases


def test_a_single_case_file_needs_no_list(tmp_path: Path) -> None:
    path = tmp_path / "one.yml"
    path.write_text("name: solo\ntranscript: 'PATIENT: hi'\n")
    assert load_cases([path])[0].rubrics == []


@pytest.mark.parametrize(("text", "path", "message"), [
    (GOOD.replace("weight: 3, ", ""), "cases[0].rubrics[0].criteria[0].weight", "required"),
    (GOOD.replace("sense: negative", "sense: bad"), "cases[0].rubrics[0].criteria[1].sense", "positive"),
    (GOOD.replace("validation: accepted", "validation: maybe"), "cases[0].rubrics[0].validation", ""),
    (GOOD.replace("        validated_at: 2026-03-02T10:00:00Z\n", ""), "cases[0].rubrics[0]", "validated_at"),
    (GOOD.replace("name: chest-pain-001", "name: 'has space'"), "cases[0].name", ""),
    (GOOD.replace("    facts:", "    colour: blue\n    facts:"), "cases[0].colour", "unknown key"),
])
def test_bad_case_files_name_the_file_and_key(tmp_path: Path, text: str, path: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(SpecError, match=message or None) as error:
        load_cases([tmp_path / "bad.yaml"])
    assert error.value.source == str(tmp_path / "bad.yaml")
    assert error.value.path == path


def test_malformed_yaml_missing_files_and_duplicate_names(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("cases: [\n")
    with pytest.raises(SpecError, match="malformed YAML"):
        load_cases([tmp_path / "broken.yaml"])
    with pytest.raises(SpecError, match="not found"):
        load_cases([tmp_path / "nope.yaml"])
    (tmp_path / "broken.yaml").unlink()
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.json").write_text('{"name": "chest-pain-001", "transcript": "x"}')
    with pytest.raises(SpecError, match="already used"):
        load_cases([tmp_path])


def test_synthetic_cases_are_reproducible_and_have_two_human_authors() -> None:
    first = generated_cases(12, seed=5, ineligible_fraction=0.25)
    assert first == generated_cases(12, seed=5, ineligible_fraction=0.25)
    assert first != generated_cases(12, seed=6, ineligible_fraction=0.25)
    eligible = 0
    for case in first:
        assert set(case.facts) == {"subjective", "objective", "assessment", "plan"}
        accepted_humans = {r.author for r in case.rubrics if r.validation is Validation.ACCEPTED and r.is_human}
        eligible += len(accepted_humans) >= 2
        for rubric in case.rubrics:
            assert sum(c.sense.value == "negative" for c in rubric.criteria) == 1
        # the facts a good note holds are said in the visit
        assert case.facts["plan"][0].lower() in case.transcript.lower()
        denied = case.facts["subjective"][1].removeprefix("Denies ")
        assert f"no {denied}" in case.transcript
    assert 0 < eligible < len(first)


def test_cases_from_any_icd9_diagnosis() -> None:
    patients = [Patient(subject_id=1, sex="F", age=70, diagnoses=("4280", "25000")),
                Patient(subject_id=2, sex=None, age=30, diagnoses=("7802",)),     # not in the condition table
                Patient(subject_id=3, sex="M", age=40, diagnoses=())]
    made = synthetic_cases(patients, seed=1)
    assert [c.name for c in made] == ["synthetic-1", "synthetic-2"]
    assert "heart failure" in made[0].facts["assessment"][0].lower()
    assert "Takes metformin for type 2 diabetes" in made[0].facts["subjective"]
    assert "syncope" in made[1].transcript.lower()


def test_patients_from_a_meds_dataset(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    from datetime import datetime

    from ehrlab.cohort.meds import write_dataset

    rows = {"subject_id": [7, 7, 7, 7, 8, 8], "time": [None, datetime(1950, 1, 1), datetime(2020, 5, 1),
                                                        datetime(2021, 5, 1), None, datetime(1990, 1, 1)],
            "code": ["GENDER//F", "MEDS_BIRTH", "ICD9CM/401.9", "ICD9CM/428.0", "GENDER//M", "MEDS_BIRTH"],
            "numeric_value": [None] * 6}
    table = pa.table(rows).cast(pa.schema([("subject_id", pa.int64()), ("time", pa.timestamp("us")),
                                           ("code", pa.string()), ("numeric_value", pa.float32())]))
    write_dataset(tmp_path / "meds", [table], dataset_name="tiny")
    patients = patients_from_meds(tmp_path / "meds")
    assert patients == [Patient(subject_id=7, sex="F", age=71, diagnoses=("4280", "4019"))]
    made = generated_cases(5, seed=1, patients=patients)
    assert len(made) == 1 and "heart failure" in made[0].facts["assessment"][0].lower()
