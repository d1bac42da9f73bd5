"""Fixtures of the causal tests: a small MEDS cohort and its simulated outcomes, made once per process."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrlab.cohort.simulator import SimulationConfig, simulate
from ehrlab.core.runner import run_local

EXPERIMENT = "ce0p62_cy0p62_y0p2_i0p2"


@pytest.fixture(scope="session")
def meds_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """800 simulated patients (about 600 are eligible: history before 2020 and alive then)."""
    root = tmp_path_factory.mktemp("meds") / "cohort"
    simulate(SimulationConfig(n_patients=800, seed=3), root)
    return root


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
