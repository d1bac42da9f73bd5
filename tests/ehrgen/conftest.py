"""A tiny structured cohort and a tiny trained generator, shared by the ehrgen tests.

The cohort is a stand-in for the simulator's output, small enough to train on in a second: codes come
in clusters that co-occur, chronic clusters recur across visits, and a few codes carry age or sex
rules (prostate 600.x male only, 614.x female only, V20.2 under 18, 650 at 15-50).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ehrlab.cohort import icd9
from ehrlab.ehrgen.records import Patient, write_jsonl

CLUSTERS = (
    ("ICD9CM/401.9", "ICD9CM/428.0", "ICD9CM/427.31", "ICD9CM/414.01"),
    ("ICD9CM/250.00", "ICD9CM/272.4", "ICD9CM/403.90", "ICD9CM/585.9"),
    ("ICD9CM/486", "ICD9CM/518.81", "ICD9CM/038.9", "ICD9CM/995.91"),
    ("ICD9CM/600.00", "ICD9CM/601.0", "ICD9CM/788.20"),
    ("ICD9CM/614.9", "ICD9CM/625.9", "ICD9CM/626.2"),
    ("ICD9CM/650", "ICD9CM/V27.0", "ICD9CM/648.91"),
    ("ICD9CM/V20.2", "ICD9CM/381.00", "ICD9CM/465.9"),
)


def make_cohort(n: int, seed: int = 0) -> list[Patient]:
    rng = np.random.default_rng(seed)
    patients = []
    for subject in range(n):
        sex = "F" if rng.random() < 0.5 else "M"
        age = float(rng.uniform(1, 90))
        possible = [c for c in CLUSTERS if all(icd9.is_allowed(code, age, sex) for code in c)]
        chronic = possible[int(rng.integers(len(possible)))]
        visits = []
        for _ in range(int(rng.integers(1, 5))):
            acute = possible[int(rng.integers(len(possible)))]
            codes = [c for c in chronic if rng.random() < 0.7] + [c for c in acute if rng.random() < 0.5]
            visit = tuple(dict.fromkeys(codes)) or chronic[:1]
            visits.append(visit)
        patients.append(Patient(age, sex, tuple(visits), subject_id=subject))
    return patients


@pytest.fixture(scope="session")
def cohort() -> list[Patient]:
    return make_cohort(600)


@pytest.fixture(scope="session")
def cohort_file(cohort: list[Patient], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cohort") / "cohort.jsonl"
    write_jsonl(cohort, path)
    return path


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """pytest -n 2 runs two workers on two cores: one thread each avoids oversubscribed OpenMP spinning."""
    import torch

    torch.set_num_threads(1)


TINY = {"size": "tiny", "epochs": 3, "batch_size": 32, "lr": 3e-3, "log_every": 5, "max_len": 64, "seed": 7}


@pytest.fixture(scope="session")
def trained(cohort_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained by the train_generator task kind (run in-process); returns its artifact dir."""
    from ehrlab.core.artifacts.local import LocalStore
    from ehrlab.core.runner import run_local

    store = LocalStore(tmp_path_factory.mktemp("store"))
    path, _ = run_local("train_generator", TINY, {"cohort": cohort_file}, store=store)
    return path


@pytest.fixture(scope="session")
def bundle(trained: Path):
    from ehrlab.ehrgen.artifact import load_bundle

    return load_bundle(trained)
