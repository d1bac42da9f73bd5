"""The known-truth simulation: latent factors from history, then exposure and outcomes with counterfactuals.

    z = tanh(x · W)                  x: patients x codes (recency weights), W: codes x 30 factors
    z[:, 0] = z-scored age           factors 0-9 shared, 10-19 exposure-only, 20-29 outcome-only
    logit P(A=1)     = logit(0.3) + ce·(z_sh · w_sh) + i·(z_exp · w_exp)              w ~ N(0, 0.5)
    logit P(Y_k(a))  = logit(0.3) + cy·(z_sh · v_sh,k) + y·(z_out · v_out,k) + a·δ_k   v ~ N(0, 0.75),
                       each factor touching outcome k with probability 0.4
    true effect_k    = mean over the cohort of P1_k - P0_k   (a risk difference)

Two seeds, both recorded: `dgp_seed` fixes the data-generating process (W, w, v and their masks), so
outer runs are replicates of one process on different samples; `seed` draws this run's exposures and
outcomes. A code's row of W depends only on (dgp_seed, code), so the same code means the same thing in
every sample. Y(1) and Y(0) share one uniform draw per patient and outcome: with δ = 0 they are equal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import expit, logit

from ehrlab.causal.names import Strengths

N_SHARED = 10
N_EXPOSURE_ONLY = 10
N_OUTCOME_ONLY = 10
N_FACTORS = N_SHARED + N_EXPOSURE_ONLY + N_OUTCOME_ONLY
SHARED = slice(0, N_SHARED)
EXPOSURE_ONLY = slice(N_SHARED, N_SHARED + N_EXPOSURE_ONLY)
OUTCOME_ONLY = slice(N_SHARED + N_EXPOSURE_ONLY, N_FACTORS)


@dataclass(frozen=True)
class Design:
    """Constants of the data-generating process (the reference system's values by default)."""

    base_rate: float = 0.3            # P(A=1) and P(Y=1) at a zero linear predictor
    code_weight_sd: float = 1.4       # code -> factor weights ~ N(0, sd)
    code_weight_zero: float = 0.8     # share of code -> factor weights set to zero
    exposure_weight_sd: float = 0.5
    outcome_weight_sd: float = 0.75
    outcome_factor_share: float = 0.4  # probability that a factor enters an outcome


def _code_stream(dgp_seed: int, code: str) -> np.random.Generator:
    digest = hashlib.blake2b(code.encode(), digest_size=8).digest()
    return np.random.default_rng([dgp_seed, int.from_bytes(digest, "little")])


def code_factor_weights(codes: Sequence[str], dgp_seed: int, design: Design = Design()) -> np.ndarray:
    """codes x N_FACTORS: N(0, sd) weights with a share set to zero, each row drawn from its code's own stream."""
    weights = np.empty((len(codes), N_FACTORS))
    for row, code in enumerate(codes):
        rng = _code_stream(dgp_seed, code)
        values = rng.normal(0.0, design.code_weight_sd, N_FACTORS)
        values[rng.random(N_FACTORS) < design.code_weight_zero] = 0.0
        weights[row] = values
    return weights


def latent_factors(x: sparse.csr_matrix, code_weights: np.ndarray, age: np.ndarray) -> np.ndarray:
    z = np.tanh(np.asarray(x @ code_weights))
    spread = age.std()
    z[:, 0] = (age - age.mean()) / spread if spread > 0 else 0.0
    return z


@dataclass(frozen=True)
class FactorWeights:
    exposure_shared: np.ndarray    # (N_SHARED,)
    exposure_only: np.ndarray      # (N_EXPOSURE_ONLY,)
    outcome_shared: np.ndarray     # (outcomes, N_SHARED), zeros where a factor does not touch the outcome
    outcome_only: np.ndarray       # (outcomes, N_OUTCOME_ONLY)


def factor_weights(dgp_seed: int, n_outcomes: int, design: Design = Design()) -> FactorWeights:
    rng = np.random.default_rng([dgp_seed, 1])
    exposure_shared = rng.normal(0.0, design.exposure_weight_sd, N_SHARED)
    exposure_only = rng.normal(0.0, design.exposure_weight_sd, N_EXPOSURE_ONLY)
    touch = rng.random((n_outcomes, N_SHARED + N_OUTCOME_ONLY)) < design.outcome_factor_share
    values = rng.normal(0.0, design.outcome_weight_sd, (n_outcomes, N_SHARED + N_OUTCOME_ONLY)) * touch
    return FactorWeights(exposure_shared, exposure_only, values[:, :N_SHARED], values[:, N_SHARED:])


@dataclass
class SimulatedOutcome:
    p1: np.ndarray
    p0: np.ndarray
    y1: np.ndarray
    y0: np.ndarray
    observed: np.ndarray

    @property
    def true_effect(self) -> float:
        return float(np.mean(self.p1 - self.p0))

    @property
    def true_risk_ratio(self) -> float:
        return float(self.p1.mean() / self.p0.mean())


@dataclass
class Simulation:
    propensity: np.ndarray
    exposure: np.ndarray
    outcomes: dict[str, SimulatedOutcome]


def simulate(z: np.ndarray, strengths: Strengths, deltas: Mapping[str, float], *, seed: int, dgp_seed: int,
             design: Design = Design()) -> Simulation:
    """Exposure and every outcome (both potential outcomes) for patients with latent factors z."""
    weights = factor_weights(dgp_seed, len(deltas), design)
    base = logit(design.base_rate)
    propensity = expit(base + strengths.ce * (z[:, SHARED] @ weights.exposure_shared)
                       + strengths.i * (z[:, EXPOSURE_ONLY] @ weights.exposure_only))
    exposure = (np.random.default_rng([seed, 0]).random(len(z)) < propensity).astype(np.int8)
    outcomes = {}
    for k, (name, delta) in enumerate(deltas.items()):
        linear = (base + strengths.cy * (z[:, SHARED] @ weights.outcome_shared[k])
                  + strengths.y * (z[:, OUTCOME_ONLY] @ weights.outcome_only[k]))
        p1, p0 = expit(linear + delta), expit(linear)
        uniform = np.random.default_rng([seed, 1 + k]).random(len(z))
        y1, y0 = (uniform < p1).astype(np.int8), (uniform < p0).astype(np.int8)
        outcomes[name] = SimulatedOutcome(p1, p0, y1, y0, np.where(exposure == 1, y1, y0))
    return Simulation(propensity, exposure, outcomes)
