"""The causal_batch planner: graph shape, seeds, options, and bad specs named by key path."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ehrlab.causal.planner import PLANNER, CausalBatchSpec, reshuffle_seed
from ehrlab.core.config import validate
from ehrlab.core.errors import SpecError
from ehrlab.core.planning import PlanContext, Source, TaskNode, get_planner
from tests.causal.conftest import EXPERIMENT

OTHER = "ce0p2_cy0p2_y0p62_i0p62"


def spec(**changes: Any) -> dict[str, Any]:
    return {"name": "t", "planner": "causal_batch", "experiments": [EXPERIMENT], "n_runs": 2, "inner_runs": 3,
            "sample_fraction": 0.5, "data": {"simulate": {"n_patients": 100}}} | changes


def plan(**changes: Any) -> tuple[CausalBatchSpec, dict[str, TaskNode]]:
    validated = validate(CausalBatchSpec, spec(**changes))
    return validated, {node.name: node for node in PLANNER.plan(validated, PlanContext())}


def test_the_planner_is_registered() -> None:
    assert get_planner("causal_batch") is PLANNER


def test_graph_shape_for_both_arms_and_two_experiments() -> None:
    _, nodes = plan(experiments=[EXPERIMENT, OTHER])
    kinds = Counter(node.kind for node in nodes.values())
    n, k, e = 2, 3, 2
    assert kinds == {"simulate_cohort": 1, "pretrain_bert": 1, "sample_cohort": n, "simulate_outcomes": n * e,
                     "prepare_folds": n * e * k, "train_catboost": n * e * k, "finetune_bert": n * e * k,
                     "calibrate": 2 * n * e * k, "estimate_effects": 2 * n * e * k, "aggregate_estimates": 1}
    estimates = {name for name, node in nodes.items() if node.kind == "estimate_effects"}
    assert set(nodes["aggregate"].inputs) == estimates
    # stage 1 is shared: every inner run of outer run 1 reads the same simulated outcomes
    users = {node.inputs["data"] for node in nodes.values() if node.kind == "prepare_folds"
             and node.labels["outer_run"] == "1" and node.labels["experiment"] == EXPERIMENT}
    assert users == {f"simulate_outcomes.{EXPERIMENT}.r01"}
    assert nodes["pretrain_bert"].inputs == {"cohort": "cohort"}


def test_seeds_are_explicit_recorded_and_distinct_per_reshuffle() -> None:
    _, nodes = plan(base_seed=7)
    assert [nodes[f"sample.r0{r}"].params["seed"] for r in (1, 2)] == [8, 9]
    simulated = nodes[f"simulate_outcomes.{EXPERIMENT}.r02"].params
    assert simulated["seed"] == 9 and simulated["dgp_seed"] == 7
    fold_seeds = {(n.labels["outer_run"], n.labels["inner_run"]): n.params["seed"]
                  for n in nodes.values() if n.kind == "prepare_folds"}
    assert len(set(fold_seeds.values())) == 6
    assert fold_seeds[("2", "3")] == reshuffle_seed(7, 2, 3)
    for arm_kind in ("train_catboost", "finetune_bert"):
        node = nodes[f"{arm_kind}.{EXPERIMENT}.r02.k03"]
        assert node.params["seed"] == reshuffle_seed(7, 2, 3)   # every arm reshuffles, with the same recorded seed
        assert node.inputs["folds"] == f"folds.{EXPERIMENT}.r02.k03"
    estimate = nodes[f"estimate.bert.{EXPERIMENT}.r02.k03"].params
    assert (estimate["outer_run"], estimate["inner_run"], estimate["arm"]) == (2, 3, "bert")
    assert plan(base_seed=7)[1] == nodes                          # the same spec, the same plan


def test_arms_sampling_and_a_user_meds_source(tmp_path: Path) -> None:
    _, nodes = plan(arms=["baseline"], sample_fraction=None, sample_size=50, data={"meds": str(tmp_path)})
    kinds = Counter(node.kind for node in nodes.values())
    assert "finetune_bert" not in kinds and "pretrain_bert" not in kinds and "simulate_cohort" not in kinds
    assert nodes["sample.r01"].params == {"size": 50, "seed": 43}
    assert nodes["sample.r01"].inputs["cohort"] == Source(str(tmp_path))


def test_options_from_the_runner_flags() -> None:
    validated, _ = plan(overwrite=True, failfast=True, timeout_factor=2.5, arms=["baseline"])
    assert validated.options.failfast and validated.options.timeout_factor == 2.5
    assert "train_catboost" in validated.options.force and "sample_cohort" in validated.options.force
    assert "finetune_bert" not in validated.options.force
    plain, _ = plan()
    assert plain.options.force == [] and not plain.options.failfast and plain.base_seed == 42


def test_sections_reach_their_kinds_and_resources_override() -> None:
    _, nodes = plan(catboost={"iterations": 10}, estimation={"n_bootstrap": 50},
                    simulation={"index_date": "2019-01-01"}, resources={"train_catboost": {"cpu": 4}})
    assert nodes[f"train_catboost.{EXPERIMENT}.r01.k01"].params["iterations"] == 10
    assert nodes[f"train_catboost.{EXPERIMENT}.r01.k01"].resources == {"cpu": 4}
    assert nodes[f"estimate.baseline.{EXPERIMENT}.r01.k01"].params["n_bootstrap"] == 50
    assert nodes["pretrain_bert"].params["index_date"] == "2019-01-01"   # the history pretraining sees matches


@pytest.mark.parametrize(("changes", "path", "message"), [
    ({"sample_fraction": None}, "", "exactly one of sample_fraction or sample_size"),
    ({"sample_size": 10}, "", "exactly one of sample_fraction or sample_size"),
    ({"experiments": [EXPERIMENT, "ce1_cy1"]}, "experiments[1]", "malformed experiment name 'ce1_cy1'"),
    ({"experiments": []}, "experiments", "at least 1 item"),
    ({"arms": ["baseline", "gpt"]}, "arms[1]", "Input should be 'baseline' or 'bert'"),
    ({"data": {}}, "data", "exactly one of data.simulate"),
    ({"seed": 1, "base_seed": 2}, "", "seed (1) and base_seed (2) disagree"),
    ({"n_runs": 0}, "n_runs", "greater than or equal to 1"),
    ({"base_seed": -1}, "base_seed", "greater than or equal to 0"),
    ({"inner_run": 2}, "inner_run", "unknown key"),
])
def test_bad_specs_name_the_key(changes: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(SpecError) as error:
        validate(CausalBatchSpec, spec(**changes))
    assert error.value.path == path and message in error.value.message


@pytest.mark.parametrize(("changes", "path", "message"), [
    ({"catboost": {"depthh": 3}}, "catboost.depthh", "unknown key"),
    ({"catboost": {"seed": 3}}, "catboost.seed", "set by the planner"),
    ({"simulation": {"experiment": OTHER}}, "simulation.experiment", "set by the planner"),
    ({"folds": {"n_folds": 1}}, "folds.n_folds", "greater than or equal to 2"),
    ({"estimation": {"methods": ["tmle", "dml"]}}, "estimation.methods[1]", "Input should be"),
    ({"resources": {"train_catbost": {"cpu": 1}}}, "resources.train_catbost", "did you mean 'train_catboost'"),
])
def test_bad_kind_sections_name_the_key(changes: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(SpecError) as error:
        plan(**changes)
    assert error.value.path == path and message in error.value.message
