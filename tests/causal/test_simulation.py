"""History features, the known-truth simulation and the simulate_outcomes task."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import sparse

from ehrlab.causal.history import read_history
from ehrlab.causal.kinds import SimulateOutcomesParams
from ehrlab.causal.names import Strengths, parse_experiment_name
from ehrlab.causal.simulation import code_factor_weights, latent_factors, simulate
from ehrlab.core.artifacts.local import LocalStore
from ehrlab.core.errors import SpecError
from ehrlab.core.runner import TaskFailure, run_local
from tests.causal.conftest import EXPERIMENT


def write_events(root: Path, rows: list[tuple[int, datetime | None, str]]) -> Path:
    (root / "data").mkdir(parents=True)
    pq.write_table(pa.table({"subject_id": pa.array([r[0] for r in rows], pa.int64()),
                             "time": pa.array([r[1] for r in rows], pa.timestamp("us")),
                             "code": [r[2] for r in rows],
                             "numeric_value": pa.array([None] * len(rows), pa.float32())}),
                   root / "data" / "0.parquet")
    return root


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- experiment names ----------------------------------------------------------------------------------

def test_experiment_names_round_trip() -> None:
    strengths = parse_experiment_name("ce0p62_cy0p62_y0p2_i0p2")
    assert strengths == Strengths(ce=0.62, cy=0.62, y=0.2, i=0.2)
    assert strengths.name == "ce0p62_cy0p62_y0p2_i0p2"
    assert parse_experiment_name("ce1_cy0_y0p05_i2").ce == 1.0


@pytest.mark.parametrize("name", ["ce0.62_cy0p62_y0p2_i0p2", "cy0p62_ce0p62_y0p2_i0p2", "ce0p62_cy0p62_y0p2",
                                  "ce0p62_cy0p62_y0p2_i0p2_extra", "", "cexp_cy1_y1_i1"])
def test_malformed_experiment_names_are_spec_errors(name: str) -> None:
    with pytest.raises(SpecError, match=r"malformed experiment name .* expected ce<v>_cy<v>_y<v>_i<v>"):
        parse_experiment_name(name)


def test_strengths_from_a_name_or_explicit_and_never_contradictory() -> None:
    explicit = SimulateOutcomesParams(ce=0.5, cy=0.1, y=0.2, i=0.0, seed=1, dgp_seed=1)
    assert explicit.strengths() == Strengths(0.5, 0.1, 0.2, 0.0)
    with pytest.raises(ValueError, match="contradict the experiment name"):
        SimulateOutcomesParams(experiment=EXPERIMENT, ce=0.9, seed=1, dgp_seed=1)
    with pytest.raises(ValueError, match="give an experiment name"):
        SimulateOutcomesParams(ce=0.5, seed=1, dgp_seed=1)
    with pytest.raises(ValueError, match="malformed experiment name"):
        SimulateOutcomesParams(experiment="ce_bad", seed=1, dgp_seed=1)
    with pytest.raises(ValueError, match="outcome name 'exposure'"):
        SimulateOutcomesParams(experiment=EXPERIMENT, outcomes={"exposure": 1.0}, seed=1, dgp_seed=1)


# ---- history ---------------------------------------------------------------------------------------------

def test_history_takes_the_last_occurrence_before_the_index_date(tmp_path: Path) -> None:
    rows = [
        (1, datetime(1950, 1, 1), "MEDS_BIRTH"), (1, None, "GENDER//F"),
        (1, datetime(2019, 1, 1), "ICD9CM/A"), (1, datetime(2015, 6, 1), "ICD9CM/A"),
        (1, datetime(2010, 1, 1), "ICD9CM/B"), (1, datetime(2010, 1, 1), "ICD9CM/C"),
        (1, datetime(2021, 1, 1), "ICD9CM/D"),                      # after the index date: ignored
        (2, datetime(1960, 1, 1), "MEDS_BIRTH"),                   # only two distinct codes: excluded
        (2, datetime(2012, 1, 1), "ICD9CM/A"), (2, datetime(2013, 1, 1), "ICD9CM/B"),
        (3, datetime(1940, 1, 1), "MEDS_BIRTH"), (3, datetime(2011, 1, 1), "ICD9CM/A"),
        (3, datetime(2011, 1, 1), "ICD9CM/B"), (3, datetime(2012, 1, 1), "ICD9CM/C"),
        (3, datetime(2018, 1, 1), "MEDS_DEATH"),                   # died before the index date: excluded
        (4, datetime(1970, 1, 1), "MEDS_BIRTH"), (4, datetime(2011, 1, 1), "ICD9CM/A"),
        (4, datetime(2011, 2, 1), "ICD9CM/B"), (4, datetime(2011, 3, 1), "ICD9CM/E"),
        (4, datetime(2022, 1, 1), "MEDS_DEATH"),                   # died after it: kept
        (5, datetime(2011, 1, 1), "ICD9CM/A"), (5, datetime(2011, 1, 1), "ICD9CM/B"),  # no birth: excluded
        (5, datetime(2011, 1, 1), "ICD9CM/C"),
    ]
    history = read_history(write_events(tmp_path / "meds", rows), index_date=date(2020, 1, 1))
    assert history.subject_id.tolist() == [1, 4]
    assert history.screened == 5
    assert history.codes == ["ICD9CM/A", "ICD9CM/B", "ICD9CM/C", "ICD9CM/E"]
    days = (datetime(2020, 1, 1) - datetime(2019, 1, 1)).days
    x = history.matrix().toarray()
    assert x[0, 0] == pytest.approx(2 ** (-days / 6000))      # the 2019 occurrence, not the 2015 one
    assert x[0, 3] == 0.0 and x[1, 2] == 0.0
    assert history.age[0] == pytest.approx(70.0, abs=0.01)
    assert history.sequences[0] == ["ICD9CM/B", "ICD9CM/C", "ICD9CM/A", "ICD9CM/A"]
    only_a = read_history(tmp_path / "meds", index_date=date(2020, 1, 1), code_prefixes=["ICD9CM/A"], min_codes=1)
    assert only_a.codes == ["ICD9CM/A"]


def test_history_names_a_missing_meds_column(tmp_path: Path, meds_dir: Path) -> None:
    shard = next((meds_dir / "data").rglob("*.parquet"))
    (tmp_path / "meds" / "data").mkdir(parents=True)
    pq.write_table(pq.read_table(shard).drop_columns(["time"]), tmp_path / "meds" / "data" / "0.parquet")
    with pytest.raises(SpecError, match="missing required MEDS column 'time'"):
        read_history(tmp_path / "meds", index_date=date(2020, 1, 1))


# ---- the simulation ---------------------------------------------------------------------------------------

def test_code_weights_depend_only_on_the_seed_and_the_code() -> None:
    both = code_factor_weights(["ICD9CM/4019", "ICD9CM/25000"], dgp_seed=42)
    alone = code_factor_weights(["ICD9CM/25000"], dgp_seed=42)
    assert np.array_equal(both[1], alone[0])
    assert not np.array_equal(code_factor_weights(["ICD9CM/25000"], dgp_seed=43), alone)
    many = code_factor_weights([f"C{i}" for i in range(2000)], dgp_seed=1)
    assert (many == 0).mean() == pytest.approx(0.8, abs=0.01)
    assert many[many != 0].std() == pytest.approx(1.4, rel=0.05)


def test_simulation_formulas() -> None:
    rng = np.random.default_rng(0)
    x = sparse.random(3000, 50, density=0.1, random_state=1, format="csr")
    age = rng.uniform(20, 90, 3000)
    z = latent_factors(x, code_factor_weights([f"C{i}" for i in range(50)], 42), age)
    assert z[:, 0].mean() == pytest.approx(0.0, abs=1e-9) and z[:, 0].std() == pytest.approx(1.0)
    assert np.abs(z[:, 1:]).max() < 1
    result = simulate(z, Strengths(0.62, 0.62, 0.2, 0.2), {"null": 0.0, "effect": 1.39}, seed=1, dgp_seed=42)
    null, effect = result.outcomes["null"], result.outcomes["effect"]
    assert np.array_equal(null.p1, null.p0) and np.array_equal(null.y1, null.y0) and null.true_effect == 0.0
    assert effect.true_effect == pytest.approx(np.mean(effect.p1 - effect.p0))
    assert np.all(effect.p1 > effect.p0) and np.all(effect.y1 >= effect.y0)
    # δ is a log-odds shift: logit P1 - logit P0 = 1.39 for every patient
    assert np.allclose(np.log(effect.p1 / (1 - effect.p1)) - np.log(effect.p0 / (1 - effect.p0)), 1.39)
    assert np.array_equal(effect.observed, np.where(result.exposure == 1, effect.y1, effect.y0))
    # no strengths: P(A=1) and P(Y=1) are the base rate 0.3 for everyone
    flat = simulate(z, Strengths(0, 0, 0, 0), {"null": 0.0}, seed=1, dgp_seed=42)
    assert np.allclose(flat.propensity, 0.3) and np.allclose(flat.outcomes["null"].p0, 0.3)


def test_simulate_outcomes_task_writes_truth_and_counterfactuals(simulated: Path) -> None:
    truth = json.loads((simulated / "truth.json").read_text())
    outcomes = pd.read_parquet(simulated / "outcomes.parquet")
    cf = pd.read_parquet(simulated / "counterfactuals.parquet")
    assert truth["experiment"] == EXPERIMENT and truth["seed"] == 43 and truth["dgp_seed"] == 42
    assert truth["patients"] == len(outcomes) == len(cf) > 400
    assert list(outcomes.columns) == ["subject_id", "exposure", "null", "effect"]
    assert truth["outcomes"]["null"]["true_effect"] == 0.0
    assert truth["outcomes"]["effect"]["true_effect"] == pytest.approx(np.mean(cf["P1_effect"] - cf["P0_effect"]))
    assert truth["outcomes"]["effect"]["true_effect"] > 0.1
    assert set(pd.read_parquet(simulated / "history.parquet")["subject_id"]) == set(outcomes["subject_id"])
    assert 0.15 < outcomes["exposure"].mean() < 0.5


def test_same_seeds_same_outputs_new_seed_new_draws(meds_dir: Path, simulated: Path) -> None:
    params = {"experiment": EXPERIMENT, "seed": 43, "dgp_seed": 42}
    again, _ = run_local("simulate_outcomes", params, {"cohort": meds_dir})
    for name in ("outcomes.parquet", "counterfactuals.parquet", "history.parquet", "sequences.parquet"):
        assert digest(again / name) == digest(simulated / name), name
    other, _ = run_local("simulate_outcomes", {**params, "seed": 44}, {"cohort": meds_dir})
    first = pd.read_parquet(simulated / "counterfactuals.parquet")
    second = pd.read_parquet(other / "counterfactuals.parquet")
    assert np.array_equal(first["P1_effect"], second["P1_effect"])   # same process (dgp_seed) …
    assert not np.array_equal(pd.read_parquet(simulated / "outcomes.parquet")["exposure"],
                              pd.read_parquet(other / "outcomes.parquet")["exposure"])   # … new draws


def test_an_empty_cohort_is_a_clear_error_and_nothing_is_written(tmp_path: Path) -> None:
    rows = [(1, datetime(1950, 1, 1), "MEDS_BIRTH"), (1, datetime(2019, 1, 1), "ICD9CM/A")]
    root = write_events(tmp_path / "meds", rows)
    store = LocalStore(tmp_path / "store")
    with pytest.raises(TaskFailure, match=r"empty cohort: none of the 1 patients .* at least 3 distinct") as failure:
        run_local("simulate_outcomes", {"experiment": EXPERIMENT, "seed": 1, "dgp_seed": 1}, {"cohort": root},
                  store=store)
    assert failure.value.exit_code == 2
    assert not list(store.list("artifacts"))
