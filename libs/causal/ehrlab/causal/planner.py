"""Planner `causal_batch`: N outer runs x K inner reshuffles of known-truth causal experiments.

    data (simulate_cohort, or a MEDS source)
     ├─ pretrain_bert                                    once per dataset (bert arm)
     └─ sample_cohort            seed = base_seed + r    stage 1, once per outer run r
         └─ simulate_outcomes    seed = base_seed + r, dgp_seed = base_seed   (per experiment)
             └─ prepare_folds    seed = reshuffle_seed(base_seed, r, k)       stage 2, per inner run k
                 ├─ train_catboost ─ calibrate ─ estimate_effects             baseline arm
                 └─ finetune_bert  ─ calibrate ─ estimate_effects             bert arm
    aggregate_estimates  <- every estimate_effects

Stage 1 is shared by the K inner runs through the cache (same key); each inner run's folds, model
randomness and bootstrap use its own recorded seed, for every arm. Tasks of one outer run failing
do not stop the others (unless failfast); the aggregate takes whatever estimates exist.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from ehrlab.causal.kinds import ARMS
from ehrlab.causal.names import parse_experiment_name
from ehrlab.core.config import SpecModel
from ehrlab.core.errors import SpecError
from ehrlab.core.kinds import get_kind
from ehrlab.core.planning import ExperimentSpec, FunctionPlanner, PlanContext, Source, TaskNode

SAMPLE_KIND = "sample_cohort"
SIMULATE_KIND = "simulate_cohort"
COHORT_INPUT = "cohort"   # the input name of sample_cohort and of the causal kinds reading MEDS


def _experiment_name(value: str) -> str:
    parse_experiment_name(value)
    return value


class DataSource(SpecModel):
    """Where the cohort comes from: simulated by the platform, or a user's MEDS dataset."""

    simulate: dict[str, Any] | None = Field(None, description="parameters of simulate_cohort")
    meds: str | None = Field(None, description="a MEDS dataset: local directory or s3:// prefix")

    @model_validator(mode="after")
    def _one(self) -> DataSource:
        if (self.simulate is None) == (self.meds is None):
            raise ValueError("give exactly one of data.simulate (a simulated cohort) or data.meds (a MEDS path)")
        return self


class CausalBatchSpec(ExperimentSpec):
    planner: Literal["causal_batch"] = "causal_batch"
    experiments: list[Annotated[str, AfterValidator(_experiment_name)]] = Field(min_length=1)
    n_runs: int = Field(1, ge=1, le=1000, description="outer runs: new patient samples")
    inner_runs: int = Field(1, ge=1, le=100, description="reshuffles of the folds per outer run")
    arms: list[Literal[ARMS]] = Field(default_factory=lambda: list(ARMS), min_length=1)  # type: ignore[valid-type]
    sample_fraction: float | None = Field(None, gt=0, le=1)
    sample_size: int | None = Field(None, ge=1)
    base_seed: int | None = Field(None, ge=0, description="default: seed (42)")
    overwrite: bool = Field(False, description="recompute every task even if its outputs exist")
    failfast: bool = Field(False, description="stop the experiment at the first failed task")
    timeout_factor: float | None = Field(None, gt=0, description="scales every task's timeout")
    data: DataSource
    simulation: dict[str, Any] = Field(default_factory=dict, description="simulate_outcomes parameters")
    folds: dict[str, Any] = Field(default_factory=dict, description="prepare_folds parameters (n_folds)")
    catboost: dict[str, Any] = Field(default_factory=dict, description="train_catboost parameters")
    pretrain: dict[str, Any] = Field(default_factory=dict, description="pretrain_bert parameters")
    finetune: dict[str, Any] = Field(default_factory=dict, description="finetune_bert parameters")
    calibration: dict[str, Any] = Field(default_factory=dict, description="calibrate parameters")
    estimation: dict[str, Any] = Field(default_factory=dict, description="estimate_effects parameters")
    resources: dict[str, dict[str, Any]] = Field(default_factory=dict, description="kind -> resources")

    @model_validator(mode="after")
    def _envelope(self) -> CausalBatchSpec:
        if (self.sample_fraction is None) == (self.sample_size is None):
            raise ValueError("give exactly one of sample_fraction or sample_size")
        if len(set(self.arms)) != len(self.arms):
            raise ValueError(f"arms repeat: {self.arms}")
        if len(set(self.experiments)) != len(self.experiments):
            raise ValueError("experiments repeat")
        if self.base_seed is None:
            if self.seed < 0:
                raise ValueError(f"seed must be 0 or more to derive the base seed, got {self.seed}")
            self.base_seed = self.seed
        elif "seed" in self.model_fields_set and self.seed != self.base_seed:
            raise ValueError(f"seed ({self.seed}) and base_seed ({self.base_seed}) disagree: give one")
        if self.overwrite:
            self.options.force = sorted({*self.options.force, *planned_kinds(self)})
        self.options.failfast = self.options.failfast or self.failfast
        if self.timeout_factor is not None:
            self.options.timeout_factor = self.timeout_factor
        return self


def planned_kinds(spec: CausalBatchSpec) -> list[str]:
    kinds = [SAMPLE_KIND, "simulate_outcomes", "prepare_folds", "calibrate", "estimate_effects",
             "aggregate_estimates"]
    if spec.data.simulate is not None:
        kinds.append(SIMULATE_KIND)
    if "baseline" in spec.arms:
        kinds.append("train_catboost")
    if "bert" in spec.arms:
        kinds += ["pretrain_bert", "finetune_bert"]
    return kinds


def reshuffle_seed(base_seed: int, outer_run: int, inner_run: int) -> int:
    """The seed of inner run k of outer run r: the first 31 bits of sha256('causal_batch/base/r/k')."""
    digest = hashlib.sha256(f"causal_batch/{base_seed}/{outer_run}/{inner_run}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def _params(kind: str, section: str, given: dict[str, Any], fixed: dict[str, Any]) -> dict[str, Any]:
    """A kind's params from the spec section plus the planner's own; validated here so errors name the section."""
    taken = sorted(set(given) & set(fixed))
    if taken:
        raise SpecError(f"{', '.join(taken)} is set by the planner (seeds, names and runs are derived)",
                        path=f"{section}.{taken[0]}")
    params = {**given, **fixed}
    get_kind(kind).validate_params(params, path=section)
    return params


def plan(spec: CausalBatchSpec, ctx: PlanContext) -> list[TaskNode]:
    base = spec.base_seed
    assert base is not None
    nodes: list[TaskNode] = []

    def add(name: str, kind: str, params: dict[str, Any], inputs: dict[str, str | Source], section: str,
            **labels: Any) -> str:
        nodes.append(TaskNode(name=name, kind=kind, params=params, inputs=inputs, spec_path=section,
                              resources=spec.resources.get(kind), labels={k: str(v) for k, v in labels.items()}))
        return name

    for kind in spec.resources:
        get_kind(kind, path=f"resources.{kind}")
    if spec.data.simulate is not None:
        cohort: str | Source = add("cohort", SIMULATE_KIND,
                                   _params(SIMULATE_KIND, "data.simulate", spec.data.simulate, {}), {}, "data.simulate")
    else:
        cohort = Source(spec.data.meds or "")
    history_keys = {k: spec.simulation[k] for k in ("index_date", "code_prefixes") if k in spec.simulation}
    pretrained = None
    if "bert" in spec.arms:
        pretrained = add("pretrain_bert", "pretrain_bert",
                         _params("pretrain_bert", "pretrain", spec.pretrain, {"seed": base, **history_keys}),
                         {COHORT_INPUT: cohort}, "pretrain")
    sample = {"fraction": spec.sample_fraction} if spec.sample_fraction is not None else {"size": spec.sample_size}
    sample_section = "sample_fraction" if spec.sample_fraction is not None else "sample_size"
    estimates: dict[str, str | Source] = {}
    for r in range(1, spec.n_runs + 1):
        sample_params = _params(SAMPLE_KIND, sample_section, {}, {**sample, "seed": base + r})
        sampled = add(f"sample.r{r:02d}", SAMPLE_KIND, sample_params, {COHORT_INPUT: cohort}, sample_section,
                      outer_run=r)
        for experiment in spec.experiments:
            data = add(f"simulate_outcomes.{experiment}.r{r:02d}", "simulate_outcomes",
                       _params("simulate_outcomes", "simulation", spec.simulation,
                               {"experiment": experiment, "seed": base + r, "dgp_seed": base}),
                       {COHORT_INPUT: sampled}, "simulation", experiment=experiment, outer_run=r)
            for k in range(1, spec.inner_runs + 1):
                seed = reshuffle_seed(base, r, k)
                run = f"{experiment}.r{r:02d}.k{k:02d}"
                labels = {"experiment": experiment, "outer_run": r, "inner_run": k}
                folds = add(f"folds.{run}", "prepare_folds",
                            _params("prepare_folds", "folds", spec.folds, {"seed": seed}), {"data": data},
                            "folds", **labels)
                for arm in spec.arms:
                    if arm == "baseline":
                        predictions = add(f"train_catboost.{run}", "train_catboost",
                                          _params("train_catboost", "catboost", spec.catboost, {"seed": seed}),
                                          {"data": data, "folds": folds}, "catboost", arm=arm, **labels)
                    else:
                        assert pretrained is not None
                        predictions = add(f"finetune_bert.{run}", "finetune_bert",
                                          _params("finetune_bert", "finetune", spec.finetune, {"seed": seed}),
                                          {"data": data, "folds": folds, "pretrained": pretrained}, "finetune",
                                          arm=arm, **labels)
                    calibrated = add(f"calibrate.{arm}.{run}", "calibrate",
                                     _params("calibrate", "calibration", spec.calibration, {}),
                                     {"predictions": predictions}, "calibration", arm=arm, **labels)
                    identity = {"seed": seed, "experiment": experiment, "outer_run": r, "inner_run": k, "arm": arm}
                    name = add(f"estimate.{arm}.{run}", "estimate_effects",
                               _params("estimate_effects", "estimation", spec.estimation, identity),
                               {"predictions": calibrated, "data": data}, "estimation", arm=arm, **labels)
                    estimates[name] = name
    add("aggregate", "aggregate_estimates", {"title": f"{spec.name}: causal estimates against the true effect"},
        estimates, "")
    return nodes


PLANNER = FunctionPlanner(name="causal_batch", spec_model=CausalBatchSpec, function=plan)
