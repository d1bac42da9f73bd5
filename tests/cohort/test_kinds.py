"""The cohort task kinds, run in-process with run_local."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ehrlab.cohort import meds as M
from ehrlab.cohort.sampling import SAMPLED_IDS
from ehrlab.core.artifacts.local import LocalStore
from ehrlab.core.runner import TaskFailure, run_local

FIXTURES = Path(__file__).parent / "fixtures" / "mimic3"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = LocalStore(tmp_path_factory.mktemp("store"))
    path, manifest = run_local("simulate_cohort", {"n_patients": 1200, "seed": 3, "shard_size": 500}, store=store)
    assert {f.path for f in manifest.files} >= {"data/00000.parquet", "data/00002.parquet", "metadata/codes.parquet",
                                                "metadata/dataset.json", "metadata/subject_splits.parquet"}
    return path


def test_simulate_cohort_writes_meds_and_reports_its_summary(simulated: Path) -> None:
    assert M.describe(simulated)["subjects"] == 1200
    rows = (simulated / "results.jsonl").read_text().splitlines()
    assert len(rows) == 1 and '"subjects": 1200' in rows[0] and '"withheld_invalid_codes"' in rows[0]


def test_kind_module_stays_light() -> None:
    code = "import sys, ehrlab.cohort.kinds; print(sorted({'numpy', 'pyarrow', 'pandas'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_sample_cohort_by_fraction_and_by_size(simulated: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    by_fraction, _ = run_local("sample_cohort", {"fraction": 0.25, "seed": 42}, {"cohort": simulated}, store=store)
    ids = pq.read_table(by_fraction / SAMPLED_IDS).column("subject_id").to_pylist()
    assert len(ids) == 300 and len(set(ids)) == 300 and ids == sorted(ids)
    assert M.subject_ids(by_fraction).tolist() == ids
    original = {p.subject_id: p for p in M.read_patients(simulated, subject_ids=ids[:20])}
    assert {p.subject_id: p for p in M.read_patients(by_fraction, limit=20)} == original
    by_size, _ = run_local("sample_cohort", {"size": 50, "seed": 42}, {"cohort": simulated}, store=store)
    assert len(pq.read_table(by_size / SAMPLED_IDS)) == 50
    again, _ = run_local("sample_cohort", {"size": 50, "seed": 42, "dataset_name": "again"}, {"cohort": simulated},
                         store=store)
    next_run, _ = run_local("sample_cohort", {"size": 50, "seed": 43}, {"cohort": simulated}, store=store)
    assert pq.read_table(again / SAMPLED_IDS).equals(pq.read_table(by_size / SAMPLED_IDS))
    assert not pq.read_table(next_run / SAMPLED_IDS).equals(pq.read_table(by_size / SAMPLED_IDS))
    splits = pq.read_table(simulated / "metadata/subject_splits.parquet").to_pylist()
    sampled = pq.read_table(by_size / "metadata/subject_splits.parquet").to_pylist()
    kept = {row["subject_id"]: row["split"] for row in sampled}
    assert all(kept[row["subject_id"]] == row["split"] for row in splits if row["subject_id"] in kept)


@pytest.mark.parametrize(("params", "message"), [
    ({"fraction": 0.1, "size": 10, "seed": 1}, "give exactly one of 'fraction' and 'size' (got both)"),
    ({"seed": 1}, "give exactly one of 'fraction' and 'size' (got neither)"),
    ({"fraction": 0.0001, "seed": 1}, "the sampled cohort is empty"),
    ({"size": 5000, "seed": 1}, "size 5000 exceeds the 1200 subjects"),
    ({"fraction": 1.5, "seed": 1}, "params.fraction"),
])
def test_bad_sampling_requests_fail_clearly_and_write_nothing(simulated: Path, tmp_path: Path, params: dict,
                                                              message: str) -> None:
    store = LocalStore(tmp_path / "store")
    with pytest.raises(TaskFailure) as caught:
        run_local("sample_cohort", params, {"cohort": simulated}, store=store)
    assert message in str(caught.value) and caught.value.exit_code == 2
    assert list(store.list("artifacts")) == []


def test_import_meds_round_trips_and_rejects_bad_datasets(simulated: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    imported, _ = run_local("import_meds", {}, {"source": simulated}, store=store)
    assert M.describe(imported) == M.describe(simulated)
    assert list(M.read_patients(imported, limit=30)) == list(M.read_patients(simulated, limit=30))
    bad = tmp_path / "bad"
    (bad / "data").mkdir(parents=True)
    pq.write_table(pq.read_table(simulated / "data/00000.parquet").drop_columns(["code"]), bad / "data/0.parquet")
    with pytest.raises(TaskFailure, match=r"data/0.parquet: code: missing required MEDS column 'code'") as caught:
        run_local("import_meds", {}, {"source": bad}, store=store)
    assert caught.value.exit_code == 2


def test_import_mimic3(tmp_path: Path) -> None:
    path, _ = run_local("import_mimic3", {}, {"source": FIXTURES}, store=LocalStore(tmp_path))
    assert M.describe(path)["subjects"] == 4
    with pytest.raises(TaskFailure, match="does not exist"):
        run_local("import_mimic3", {}, {"source": tmp_path / "nowhere"}, store=LocalStore(tmp_path))
