"""The cohort simulator: validity, MEDS conformance, structure, reproducibility."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import meds
import numpy as np
import pyarrow.parquet as pq
import pytest

from ehrlab.cohort import icd9
from ehrlab.cohort import meds as M
from ehrlab.cohort.simulator import SimulationConfig, simulate, simulate_shard

CONFIG = SimulationConfig(n_patients=6000, seed=11, shard_size=2500)
INDEX = datetime(2020, 1, 1)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim") / "cohort"
    summary = simulate(CONFIG, root)
    assert summary["subjects"] == CONFIG.n_patients and summary["shards"] == 3
    return root


@pytest.fixture(scope="module")
def patients(cohort: Path) -> list[M.Patient]:
    return list(M.read_patients(cohort))


def test_output_conforms_to_the_meds_schemas(cohort: Path) -> None:
    shards = M.validate(cohort)
    assert len(shards) == 3
    for shard in shards:
        table = pq.read_table(shard)
        meds.DataSchema.validate(table)
        subjects = table.column("subject_id").to_numpy()
        assert (np.diff(subjects) >= 0).all()
    meds.CodeMetadataSchema.validate(pq.read_table(cohort / meds.code_metadata_filepath))
    meds.SubjectSplitSchema.validate(pq.read_table(cohort / meds.subject_splits_filepath))
    assert M.subject_ids(cohort).tolist() == list(range(1, CONFIG.n_patients + 1))


def test_every_code_is_possible_for_the_patient(patients: list[M.Patient]) -> None:
    rows = [(code, visit.age, p.sex) for p in patients for visit in p.visits for code in visit.codes]
    vocabulary = sorted({code for code, _, _ in rows})
    assert all(icd9.normalize(code) in icd9.code_table().index for code in vocabulary)
    rules = icd9.rules_for(vocabulary)
    position = {code: i for i, code in enumerate(vocabulary)}
    column = np.array([position[code] for code, _, _ in rows])
    age = np.array([age for _, age, _ in rows])
    sex = icd9.sex_codes(np.array([sex for _, _, sex in rows]))
    allowed = (rules.min_age[column] <= age) & (age < rules.max_age[column]) & (
        (rules.sex[column] == icd9.ANY_SEX) | (rules.sex[column] == sex))
    bad = [rows[i] for i in np.flatnonzero(~allowed)]
    assert bad == []
    assert [icd9.violations(*rows[i]) for i in range(0, len(rows), 997)] == [[]] * len(range(0, len(rows), 997))


def test_demographics(patients: list[M.Patient]) -> None:
    assert all(p.birth is not None and p.sex in ("F", "M") for p in patients)
    assert 0.45 < np.mean([p.sex == "F" for p in patients]) < 0.57
    dead = [p for p in patients if p.death is not None]
    assert 0.02 < len(dead) / len(patients) < 0.2
    assert all(v.time <= p.death for p in dead for v in p.visits)
    assert all(v.age >= 0 for p in patients for v in p.visits)
    assert all(all(len(set(v.codes)) == len(v.codes) for v in p.visits) for p in patients)


def test_enough_history_for_causal_studies(patients: list[M.Patient]) -> None:
    eligible = [p for p in patients if p.death is None
                and len({c for v in p.visits if v.time < INDEX for c in v.codes}) >= 3]
    assert len(eligible) / len(patients) > 0.6


def test_chronic_conditions_persist_and_cluster(patients: list[M.Patient]) -> None:
    def has(p: M.Patient, code: str) -> bool:
        return any(code in v.codes for v in p.visits)

    hypertensive = [p for p in patients if has(p, "ICD9CM/401.9")]
    assert len(hypertensive) > 300
    repeated = [p for p in hypertensive if sum("ICD9CM/401.9" in v.codes for v in p.visits) >= 2]
    assert len(repeated) / len(hypertensive) > 0.6
    # comorbidity: diabetes and kidney disease are far more common with hypertension
    adults = [p for p in patients if p.visits and p.visits[-1].age >= 40]
    for code in ("ICD9CM/250.00", "ICD9CM/585.3"):
        with_htn = np.mean([has(p, code) for p in adults if has(p, "ICD9CM/401.9")])
        without = np.mean([has(p, code) for p in adults if not has(p, "ICD9CM/401.9")])
        assert with_htn > 2 * without, code


def test_age_and_sex_specific_codes(patients: list[M.Patient]) -> None:
    deliveries = [(p, v) for p in patients for v in p.visits if "ICD9CM/V27.0" in v.codes]
    assert len(deliveries) > 20
    assert all(p.sex == "F" and 15 <= v.age < 51 for p, v in deliveries)
    prostate = [p for p in patients if any(c.startswith("ICD9CM/600.") for c in p.codes)]
    assert prostate and all(p.sex == "M" for p in prostate)
    well_child = [v.age for p in patients for v in p.visits if "ICD9CM/V20.2" in v.codes]
    assert well_child and max(well_child) < 18
    top = Counter(code for p in patients for code in p.codes).most_common(5)
    assert {code for code, _ in top} & {"ICD9CM/401.9", "ICD9CM/465.9", "ICD9CM/V20.2", "ICD9CM/272.4"}
    assert len({code for p in patients for code in p.codes}) > 2000  # a long tail


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    small = SimulationConfig(n_patients=1500, seed=5, shard_size=1000)
    simulate(small, tmp_path / "a")
    simulate(small, tmp_path / "b")
    simulate(SimulationConfig(n_patients=1500, seed=6, shard_size=1000), tmp_path / "c")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 6
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert (tmp_path / "a/data/00000.parquet").read_bytes() != (tmp_path / "c/data/00000.parquet").read_bytes()


@pytest.mark.slow
def test_worker_processes_write_the_same_dataset(tmp_path: Path) -> None:
    small = SimulationConfig(n_patients=3000, seed=5, shard_size=1000)
    simulate(small, tmp_path / "serial")
    simulate(small, tmp_path / "parallel", workers=2)
    for rel in ("data/00000.parquet", "data/00002.parquet", "metadata/codes.parquet"):
        assert (tmp_path / "serial" / rel).read_bytes() == (tmp_path / "parallel" / rel).read_bytes()


def test_a_shard_depends_only_on_seed_and_shard(tmp_path: Path) -> None:
    whole = SimulationConfig(n_patients=3000, seed=9, shard_size=1000)
    table, _ = simulate_shard(whole, 2)
    alone, _ = simulate_shard(SimulationConfig(n_patients=3000, seed=9, shard_size=1000), 2)
    assert table.equals(alone)
    assert table.column("subject_id").to_numpy().min() == 2001


def test_bad_configs() -> None:
    with pytest.raises(ValueError, match="n_patients"):
        SimulationConfig(n_patients=0)
    with pytest.raises(ValueError, match="start_year"):
        SimulationConfig(n_patients=10, start_year=2020, end_year=2010)
    with pytest.raises(ValueError, match="shard"):
        simulate_shard(SimulationConfig(n_patients=10, shard_size=5), 2)


@pytest.mark.parametrize("n_patients", [1, 2, 12])
def test_tiny_cohorts(tmp_path: Path, n_patients: int) -> None:
    for seed in range(3):  # some of these have no pregnancy episode at all
        out = tmp_path / f"{n_patients}-{seed}"
        simulate(SimulationConfig(n_patients=n_patients, seed=seed), out)
        assert len(list(M.read_patients(out))) == n_patients
