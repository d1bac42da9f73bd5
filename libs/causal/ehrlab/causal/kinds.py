"""The causal task kinds: their parameters, inputs, resources and where they run.

Imports nothing heavy (the controller imports every kind to plan and hash); the implementations live
in the modules named by `run` and are imported only by the task runner.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ehrlab.causal.names import Strengths, parse_experiment_name
from ehrlab.core.config import SpecModel
from ehrlab.core.kinds import Resources, TaskKind

DEFAULT_OUTCOMES = {"null": 0.0, "effect": 1.39}
_OUTCOME_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
ESTIMATION_METHODS = ("ipw", "aipw", "tmle", "ipw_bootstrap", "aipw_bootstrap", "tmle_bootstrap",
                      "unadjusted_rd", "unadjusted_rr")
ARMS = ("baseline", "bert")


class HistoryParams(SpecModel):
    """How patient histories are read from MEDS (shared by simulate_outcomes and pretrain_bert)."""

    index_date: date = Field(date(2020, 1, 1), description="history ends the day before; outcomes follow it")
    code_prefixes: list[str] = Field(default_factory=list,
                                     description="diagnosis codes start with one of these (empty: every code "
                                                 "except MEDS_BIRTH/MEDS_DEATH and other MEDS_ codes)")


class SimulateOutcomesParams(HistoryParams):
    experiment: str = Field("", description="strengths as a name, e.g. ce0p62_cy0p62_y0p2_i0p2")
    ce: float | None = Field(None, description="shared factors -> exposure (instead of a name)")
    cy: float | None = Field(None, description="shared factors -> outcome")
    y: float | None = Field(None, description="outcome-only factors -> outcome")
    i: float | None = Field(None, description="exposure-only factors (instruments) -> exposure")
    outcomes: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_OUTCOMES),
                                       description="outcome name -> δ, the exposure's log-odds effect")
    half_life_days: float = Field(6000.0, gt=0, description="a code's weight halves every this many days")
    min_codes: int = Field(3, ge=1, description="distinct codes a patient needs before the index date")
    seed: int = Field(description="draws this run's exposures and outcomes")
    dgp_seed: int = Field(description="fixes the data-generating process (weights) across outer runs")

    @field_validator("experiment")
    @classmethod
    def _experiment(cls, value: str) -> str:
        if value:
            parse_experiment_name(value)
        return value

    @field_validator("outcomes")
    @classmethod
    def _outcomes(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("give at least one outcome")
        for name in value:
            if not _OUTCOME_NAME.fullmatch(name) or name in ("subject_id", "exposure"):
                raise ValueError(f"outcome name {name!r} must be a letter then letters, digits or _ "
                                 "(and not subject_id or exposure)")
        return value

    @model_validator(mode="after")
    def _strengths(self) -> SimulateOutcomesParams:
        explicit = {"ce": self.ce, "cy": self.cy, "y": self.y, "i": self.i}
        if self.experiment and any(v is not None for v in explicit.values()):
            named = parse_experiment_name(self.experiment)
            if any(v is not None and v != getattr(named, k) for k, v in explicit.items()):
                raise ValueError(f"ce/cy/y/i contradict the experiment name {self.experiment!r}")
        elif not self.experiment and any(v is None for v in explicit.values()):
            raise ValueError("give an experiment name (e.g. ce0p62_cy0p62_y0p2_i0p2) or all of ce, cy, y, i")
        return self

    def strengths(self) -> Strengths:
        if self.experiment:
            return parse_experiment_name(self.experiment)
        return Strengths(ce=self.ce, cy=self.cy, y=self.y, i=self.i)  # type: ignore[arg-type]


class PrepareFoldsParams(SpecModel):
    n_folds: int = Field(5, ge=2, le=50)
    seed: int = Field(description="the reshuffle seed: folds are a function of it and the cohort")


class TuningParams(SpecModel):
    n_trials: int = Field(0, ge=0, le=200, description="Optuna trials on the first fold (0: no tuning)")


class TrainCatboostParams(SpecModel):
    seed: int = Field(description="model randomness and the early-stopping split")
    iterations: int = Field(200, ge=1, description="at most; early stopping usually ends sooner")
    learning_rate: float = Field(0.2, gt=0, le=1)
    depth: int = Field(6, ge=1, le=12)
    l2_leaf_reg: float = Field(3.0, ge=0)
    early_stopping_rounds: int = Field(20, ge=1)
    validation_fraction: float = Field(0.1, gt=0, lt=0.5, description="held out of the training folds to stop early")
    balance_classes: bool = Field(True, description="scale_pos_weight = negatives / positives")
    max_codes: int = Field(500, ge=1, description="one-hot features for at most this many most frequent codes")
    min_code_count: int = Field(5, ge=1, description="codes seen in fewer patients get no feature")
    threads: int = Field(0, ge=0, description="0: the task's cpu resources")
    tuning: TuningParams = Field(default_factory=TuningParams)


class BertSize(SpecModel):
    hidden_size: int = Field(64, ge=8)
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    intermediate_size: int = Field(128, ge=8)
    max_length: int = Field(128, ge=8, description="tokens per patient: [CLS], age, then the most recent codes")

    @model_validator(mode="after")
    def _heads(self) -> BertSize:
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be a multiple of heads {self.heads}")
        return self


class TrainingLoop(SpecModel):
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda (bf16) when present")
    threads: int = Field(0, ge=0, description="CPU threads (0: the task's cpu resources)")


class PretrainBertParams(HistoryParams, TrainingLoop):
    seed: int
    model: BertSize = Field(default_factory=BertSize)
    min_code_count: int = Field(1, ge=1, description="codes seen in fewer patients become [UNK]")
    mask_probability: float = Field(0.15, gt=0, lt=1)
    max_patients: int = Field(0, ge=0, description="pretrain on at most this many patients (0: all)")


class FinetuneBertParams(TrainingLoop):
    seed: int
    learning_rate: float = Field(2e-4, gt=0)
    validation_fraction: float = Field(0.1, gt=0, lt=0.5, description="held out of the training folds to stop early")
    patience: int = Field(2, ge=1, description="epochs without a better validation loss before stopping")


class CalibrateParams(SpecModel):
    method: Literal["beta", "none"] = Field("beta", description="beta calibration (a, b, m) or pass-through")
    clip: float = Field(1e-8, gt=0, lt=0.5, description="probabilities are clipped to [clip, 1 - clip]")


class EstimateEffectsParams(SpecModel):
    methods: list[Literal[ESTIMATION_METHODS]] = Field(default_factory=lambda: list(ESTIMATION_METHODS),  # type: ignore[valid-type]
                                                       min_length=1)
    clip_percentile: float = Field(0.99, gt=0, le=1, description="IPW weights are clipped here within each arm")
    n_bootstrap: int = Field(200, ge=10)
    seed: int = Field(description="the bootstrap's resampling")
    experiment: str = ""
    outer_run: int = Field(0, ge=0)
    inner_run: int = Field(0, ge=0)
    arm: str = ""


class AggregateEstimatesParams(SpecModel):
    title: str = Field("", description="heading of estimates.md")


_PKG = "ehrlab.causal"
KINDS = (
    TaskKind(name="simulate_outcomes", service="data-prep", params=SimulateOutcomesParams,
             run=f"{_PKG}.outcomes:simulate_outcomes", inputs=("cohort",),
             code=(f"{_PKG}.outcomes", f"{_PKG}.simulation", f"{_PKG}.history", f"{_PKG}.files"),
             resources=Resources(cpu=1, memory="4Gi"), timeout_s=1800,
             metrics=("patients", "exposed_share"),
             description="History features from a MEDS cohort, then a simulated exposure and outcomes with "
                         "known counterfactuals (P1, P0, Y1, Y0) and the true effect."),
    TaskKind(name="prepare_folds", service="data-prep", params=PrepareFoldsParams,
             run=f"{_PKG}.folds:prepare_folds", inputs=("data",), code=(f"{_PKG}.folds", f"{_PKG}.files"),
             resources=Resources(cpu=0.5, memory="1Gi"), timeout_s=600,
             description="Cross-fitting folds stratified by exposure, shuffled with a recorded seed."),
    TaskKind(name="train_catboost", service="trainer", params=TrainCatboostParams,
             run=f"{_PKG}.catboost_arm:train_catboost", inputs=("data", "folds"),
             code=(f"{_PKG}.catboost_arm", f"{_PKG}.features", f"{_PKG}.files"),
             resources=Resources(cpu=2, memory="4Gi"), timeout_s=3600, metrics=("auc", "logloss"),
             description="Cross-fitted CatBoost propensity and outcome models on one-hot codes and age; "
                         "counterfactual predictions by flipping the exposure."),
    TaskKind(name="pretrain_bert", service="trainer", params=PretrainBertParams,
             run=f"{_PKG}.bert:pretrain_bert", inputs=("cohort",),
             code=(f"{_PKG}.bert", f"{_PKG}.history"), resources=Resources(cpu=2, memory="8Gi"),
             timeout_s=4 * 3600, fresh_process=True, metrics=("mlm_loss",),
             description="Masked-code pretraining of a small transformer on code sequences, once per dataset."),
    TaskKind(name="finetune_bert", service="trainer", params=FinetuneBertParams,
             run=f"{_PKG}.bert:finetune_bert", inputs=("data", "folds", "pretrained"),
             code=(f"{_PKG}.bert", f"{_PKG}.files"), resources=Resources(cpu=2, memory="8Gi"),
             timeout_s=4 * 3600, fresh_process=True, metrics=("loss", "val_loss"),
             description="Cross-fitted fine-tuning with propensity and outcome heads; counterfactual "
                         "predictions by flipping the exposure input."),
    TaskKind(name="calibrate", service="trainer", params=CalibrateParams,
             run=f"{_PKG}.calibration:calibrate", inputs=("predictions",),
             code=(f"{_PKG}.calibration", f"{_PKG}.files"), resources=Resources(cpu=1, memory="2Gi"),
             timeout_s=900, metrics=("brier_raw", "brier_calibrated"),
             description="Beta calibration fitted on the training folds' predictions, applied to the held-out "
                         "fold; raw predictions where it does not improve the Brier score."),
    TaskKind(name="estimate_effects", service="trainer", params=EstimateEffectsParams,
             run=f"{_PKG}.effects:estimate_effects", inputs=("predictions", "data"),
             code=(f"{_PKG}.effects", f"{_PKG}.estimators", f"{_PKG}.files"),
             resources=Resources(cpu=1, memory="2Gi"), timeout_s=1800,
             description="IPW, AIPW, TMLE (influence-curve and bootstrap SEs) and unadjusted RD/RR, "
                         "each scored against the true effect."),
    TaskKind(name="aggregate_estimates", service="trainer", params=AggregateEstimatesParams,
             run=f"{_PKG}.aggregate:aggregate_estimates", optional_inputs=("*",), partial_inputs=True,
             code=(f"{_PKG}.aggregate", f"{_PKG}.files"), resources=Resources(cpu=1, memory="2Gi"),
             timeout_s=900,
             description="Coverage, bias, RMSE, within-run and across-run spread per experiment, arm and "
                         "method: CSV, a Markdown table and plots."),
)
