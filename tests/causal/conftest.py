"""Fixtures of the causal tests: a small MEDS cohort and its simulated outcomes, made once per process."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrlab.core.runner import run_local
from tests.causal.meds_fixture import write_meds

EXPERIMENT = "ce0p62_cy0p62_y0p2_i0p2"


@pytest.fixture(scope="session")
def meds_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_meds(tmp_path_factory.mktemp("meds"), 600, seed=3)


@pytest.fixture(scope="session")
def simulated(meds_dir: Path) -> Path:
    """simulate_outcomes on the fixture cohort (seed 43, dgp_seed 42)."""
    path, _ = run_local("simulate_outcomes", {"experiment": EXPERIMENT, "seed": 43, "dgp_seed": 42},
                        {"cohort": meds_dir})
    return path


@pytest.fixture(scope="session")
def folds(simulated: Path) -> Path:
    path, _ = run_local("prepare_folds", {"seed": 7, "n_folds": 3}, {"data": simulated})
    return path
