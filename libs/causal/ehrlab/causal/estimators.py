"""Average treatment effect estimators on cross-fitted nuisance predictions.

Every estimator sees the same arrays for one outcome: exposure `a` (0/1), outcome `y` (0/1), the
propensity score `ps = P(A=1 | X)` and the outcome model's predictions under each exposure,
`q1 = P(Y=1 | A=1, X)` and `q0 = P(Y=1 | A=0, X)`. All of them estimate the risk difference
E[Y(1)] - E[Y(0)], except `unadjusted_rr` (the crude risk ratio).

- IPW: Hajek (self-normalised) weighting, weights clipped at a percentile within each arm.
- AIPW: the augmented estimator with self-normalised augmentation (as CausalEstimate computes it).
- TMLE: clever covariate H = A/ps - (1-A)/(1-ps), fluctuation epsilon from a logistic regression of
  Y on H with offset logit(Q); when that fit is unstable (separation, no convergence) the one-step
  estimate (plug-in + mean influence curve) is used instead, and the row says so.
- Standard errors from the influence curve, SE = sqrt(var(IC) / n), CI = estimate ± 1.96·SE; the
  `_bootstrap` variants resample patients instead (SE = SD of the replicates, percentile CI),
  keeping the nuisance predictions fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, logit

from ehrlab.core.errors import SpecError

Z95 = 1.96
Q_BOUND = 1e-8          # outcome predictions are kept this far from 0 and 1 before taking logits
MAX_FLUCTUATION = 30.0  # |epsilon| beyond this means the fluctuation ran away (separated data)

RISK_DIFFERENCE = "risk_difference"
RISK_RATIO = "risk_ratio"


@dataclass(frozen=True)
class NuisanceData:
    """The arrays every estimator reads, checked once."""

    a: np.ndarray
    y: np.ndarray
    ps: np.ndarray
    q1: np.ndarray
    q0: np.ndarray

    @classmethod
    def checked(cls, a: np.ndarray, y: np.ndarray, ps: np.ndarray, q1: np.ndarray, q0: np.ndarray,
                *, label: str = "") -> NuisanceData:
        where = f"{label}: " if label else ""
        arrays = {name: np.asarray(value, dtype=float) for name, value in
                  (("exposure", a), ("outcome", y), ("ps", ps), ("q1", q1), ("q0", q0))}
        n = len(arrays["exposure"])
        for name, values in arrays.items():
            if values.ndim != 1 or len(values) != n:
                raise SpecError(f"{where}{name} has shape {values.shape}, expected ({n},)")
            if not np.isfinite(values).all():
                raise SpecError(f"{where}{name} has {int((~np.isfinite(values)).sum())} missing or infinite values")
        for name in ("exposure", "outcome"):
            if not np.isin(arrays[name], (0.0, 1.0)).all():
                raise SpecError(f"{where}{name} must be 0 or 1")
        for name in ("ps", "q1", "q0"):
            values = arrays[name]
            if (values < 0).any() or (values > 1).any():
                raise SpecError(f"{where}{name} must lie in [0, 1]")
        ps_values = arrays["ps"]
        if ((ps_values <= 0) | (ps_values >= 1)).any():
            raise SpecError(f"{where}ps must lie strictly between 0 and 1 (clip it first)")
        treated = int(arrays["exposure"].sum())
        if treated == 0 or treated == n:
            raise SpecError(f"{where}every patient is {'un' if treated == 0 else ''}exposed: "
                            "the effect is not identified")
        return cls(arrays["exposure"], arrays["outcome"], ps_values, arrays["q1"], arrays["q0"])

    def take(self, index: np.ndarray) -> NuisanceData:
        return NuisanceData(self.a[index], self.y[index], self.ps[index], self.q1[index], self.q0[index])

    def __len__(self) -> int:
        return len(self.a)


@dataclass(frozen=True)
class Estimate:
    effect: float
    std_err: float
    ci95_lower: float
    ci95_upper: float
    note: str = ""


@dataclass(frozen=True)
class PointEstimate:
    """An estimate with its influence curve (None where the SE has a closed form instead)."""

    effect: float
    influence: np.ndarray | None = None
    note: str = ""


def wald(effect: float, influence: np.ndarray, note: str = "") -> Estimate:
    """SE = sqrt(var(IC) / n) (sample variance), CI = effect ± 1.96·SE."""
    se = float(np.sqrt(np.var(influence, ddof=1) / len(influence)))
    return Estimate(effect, se, effect - Z95 * se, effect + Z95 * se, note)


# ---- weights ---------------------------------------------------------------------------------------

def ipw_weights(a: np.ndarray, ps: np.ndarray, clip_percentile: float = 1.0) -> np.ndarray:
    """1/ps for the exposed, 1/(1-ps) for the unexposed; each arm clipped at its own percentile."""
    if not 0 < clip_percentile <= 1:
        raise SpecError(f"clip_percentile must be in (0, 1], got {clip_percentile}")
    weights = np.where(a == 1, 1.0 / ps, 1.0 / (1.0 - ps))
    if clip_percentile < 1:
        for arm in (a == 1, a == 0):
            weights[arm] = np.minimum(weights[arm], np.percentile(weights[arm], clip_percentile * 100))
    return weights


def _arm_influence(y: np.ndarray, w: np.ndarray, q: np.ndarray, mu: float) -> np.ndarray:
    """Influence curve of a self-normalised arm mean mu = mean(q) + sum(w (y - q)) / sum(w).

    w is zero off the arm. With q constant (= mu) this is the Hajek IPW curve w (y - mu) / mean(w).
    """
    scale = w.mean()
    residual = (w * (y - q)).mean() / scale
    return w * (y - q - residual) / scale + (q - (mu - residual))


# ---- point estimators ------------------------------------------------------------------------------

def ipw(data: NuisanceData, clip_percentile: float = 0.99) -> PointEstimate:
    """Hajek IPW: weighted outcome means in each arm, weights clipped per arm."""
    w = ipw_weights(data.a, data.ps, clip_percentile)
    w1, w0 = w * data.a, w * (1 - data.a)
    mu1 = float((w1 * data.y).sum() / w1.sum())
    mu0 = float((w0 * data.y).sum() / w0.sum())
    influence = _arm_influence(data.y, w1, np.full(len(data), mu1), mu1) \
        - _arm_influence(data.y, w0, np.full(len(data), mu0), mu0)
    return PointEstimate(mu1 - mu0, influence)


def aipw(data: NuisanceData, clip_percentile: float = 1.0) -> PointEstimate:
    """AIPW: mean(q_a) + self-normalised weighted mean of residuals, per arm."""
    w = ipw_weights(data.a, data.ps, clip_percentile)
    w1, w0 = w * data.a, w * (1 - data.a)
    mu1 = float(data.q1.mean() + (w1 * (data.y - data.q1)).sum() / w1.sum())
    mu0 = float(data.q0.mean() + (w0 * (data.y - data.q0)).sum() / w0.sum())
    influence = _arm_influence(data.y, w1, data.q1, mu1) - _arm_influence(data.y, w0, data.q0, mu0)
    return PointEstimate(mu1 - mu0, influence)


def fluctuation(y: np.ndarray, offset: np.ndarray, h: np.ndarray, *, max_iter: int = 100,
                tol: float = 1e-10) -> float | None:
    """epsilon maximising the logistic likelihood of y ~ expit(offset + epsilon·h), or None if unstable.

    The score s(eps) = sum(h (y - expit(offset + eps·h))) falls strictly in eps, so Newton's method
    with step halving (until |s| shrinks) finds its root. None when there is no root (the data are
    separated along h), or when it does not converge or epsilon runs off.
    """
    # s falls from its limit at -inf to its limit at +inf; without a sign change there is no root
    score_at_plus_inf = float(np.sum(np.where(h > 0, h * (y - 1), h * y)))
    score_at_minus_inf = float(np.sum(np.where(h > 0, h * y, h * (y - 1))))
    if score_at_plus_inf >= 0 or score_at_minus_inf <= 0:
        return None
    eps, p = 0.0, expit(offset)
    score = float(np.sum(h * (y - p)))
    limit = tol * max(1.0, float(np.abs(h).sum()))
    for _ in range(max_iter):
        if abs(score) <= limit:
            return eps
        information = float(np.sum(h * h * p * (1 - p)))
        if not np.isfinite(information) or information <= 0:
            return None
        step = score / information
        for _ in range(60):
            candidate = eps + step
            p_candidate = expit(offset + candidate * h)
            score_candidate = float(np.sum(h * (y - p_candidate)))
            if abs(score_candidate) < abs(score):
                break
            step /= 2
        else:
            return None
        eps, p, score = candidate, p_candidate, score_candidate
        if not np.isfinite(eps) or abs(eps) > MAX_FLUCTUATION:
            return None
    return None


def clever_covariate(a: np.ndarray, ps: np.ndarray) -> np.ndarray:
    return a / ps - (1 - a) / (1 - ps)


def tmle(data: NuisanceData) -> PointEstimate:
    """TMLE with the clever covariate; the one-step estimate when the fluctuation is unstable."""
    q1 = np.clip(data.q1, Q_BOUND, 1 - Q_BOUND)
    q0 = np.clip(data.q0, Q_BOUND, 1 - Q_BOUND)
    qa = np.where(data.a == 1, q1, q0)
    h = clever_covariate(data.a, data.ps)
    eps = fluctuation(data.y, logit(qa), h)
    if eps is None:
        influence_core = h * (data.y - qa) + (q1 - q0)
        effect = float(influence_core.mean())
        return PointEstimate(effect, influence_core - effect,
                             note="TMLE fluctuation unstable: one-step estimate")
    q1_star = expit(logit(q1) + eps / data.ps)
    q0_star = expit(logit(q0) - eps / (1 - data.ps))
    qa_star = np.where(data.a == 1, q1_star, q0_star)
    effect = float(np.mean(q1_star - q0_star))
    return PointEstimate(effect, h * (data.y - qa_star) + (q1_star - q0_star) - effect)


# ---- unadjusted ------------------------------------------------------------------------------------

def _arm_risks(data: NuisanceData) -> tuple[float, float, int, int]:
    exposed = data.a == 1
    n1, n0 = int(exposed.sum()), int((~exposed).sum())
    return float(data.y[exposed].mean()), float(data.y[~exposed].mean()), n1, n0


def unadjusted_rd(data: NuisanceData) -> Estimate:
    """Crude risk difference with the Wald SE sqrt(p1(1-p1)/n1 + p0(1-p0)/n0)."""
    p1, p0, n1, n0 = _arm_risks(data)
    se = float(np.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0))
    return Estimate(p1 - p0, se, p1 - p0 - Z95 * se, p1 - p0 + Z95 * se)


def unadjusted_rr(data: NuisanceData) -> Estimate:
    """Crude risk ratio; std_err is that of log(RR), sqrt((1-p1)/(n1 p1) + (1-p0)/(n0 p0)), CI exp(log RR ± 1.96·SE)."""
    p1, p0, n1, n0 = _arm_risks(data)
    if p1 == 0 or p0 == 0:
        rr = float("inf") if p0 == 0 and p1 > 0 else (0.0 if p1 == 0 and p0 > 0 else float("nan"))
        return Estimate(rr, float("nan"), float("nan"), float("nan"), note="an arm has no outcomes: RR undefined")
    rr = p1 / p0
    se = float(np.sqrt((1 - p1) / (n1 * p1) + (1 - p0) / (n0 * p0)))
    return Estimate(rr, se, float(np.exp(np.log(rr) - Z95 * se)), float(np.exp(np.log(rr) + Z95 * se)))


# ---- bootstrap -------------------------------------------------------------------------------------

PointFunction = Callable[[NuisanceData], PointEstimate]


def bootstrap(points: dict[str, PointFunction], data: NuisanceData, *, n_bootstrap: int,
              rng: np.random.Generator) -> dict[str, Estimate]:
    """For each point estimator: the full-sample estimate, SE = SD of its replicates, a percentile CI.

    All estimators see the same resamples of patients (a draw with a single arm is redrawn). Nuisance
    predictions are held fixed, as in CausalEstimate.
    """
    replicates = {name: np.empty(n_bootstrap) for name in points}
    n = len(data)
    for b in range(n_bootstrap):
        while True:
            index = rng.integers(0, n, n)
            treated = data.a[index].sum()
            if 0 < treated < n:
                break
        sample = data.take(index)
        for name, point in points.items():
            replicates[name][b] = point(sample).effect
    results = {}
    for name, point in points.items():
        full = point(data)
        lower, upper = np.percentile(replicates[name], [2.5, 97.5])
        results[name] = Estimate(full.effect, float(np.std(replicates[name], ddof=1)), float(lower), float(upper),
                                 full.note)
    return results


# ---- the registry the estimate_effects task uses ---------------------------------------------------

@dataclass(frozen=True)
class Method:
    name: str
    estimand: str
    description: str


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("ipw", RISK_DIFFERENCE, "Hajek IPW, weights clipped at a percentile per arm; influence-curve SE"),
    Method("aipw", RISK_DIFFERENCE, "augmented IPW; influence-curve SE"),
    Method("tmle", RISK_DIFFERENCE, "TMLE (clever covariate, logistic fluctuation); influence-curve SE"),
    Method("ipw_bootstrap", RISK_DIFFERENCE, "Hajek IPW; bootstrap SE and percentile CI"),
    Method("aipw_bootstrap", RISK_DIFFERENCE, "augmented IPW; bootstrap SE and percentile CI"),
    Method("tmle_bootstrap", RISK_DIFFERENCE, "TMLE; bootstrap SE and percentile CI"),
    Method("unadjusted_rd", RISK_DIFFERENCE, "crude risk difference; Wald SE"),
    Method("unadjusted_rr", RISK_RATIO, "crude risk ratio; SE of log RR, CI on the log scale"),
)}
BOOTSTRAP = "_bootstrap"


def estimate_all(methods: list[str], data: NuisanceData, *, clip_percentile: float = 0.99, n_bootstrap: int = 200,
                 rng: np.random.Generator | None = None) -> dict[str, Estimate]:
    """Runs the named methods of METHODS; the bootstrap ones share their resamples."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SpecError(f"unknown estimation method {unknown[0]!r} (known: {', '.join(METHODS)})")
    points: dict[str, PointFunction] = {"ipw": lambda d: ipw(d, clip_percentile), "aipw": aipw, "tmle": tmle}
    resampled = [m.removesuffix(BOOTSTRAP) for m in methods if m.endswith(BOOTSTRAP)]
    if resampled and rng is None:
        raise ValueError("bootstrap methods need an explicit random generator")
    bootstrapped = bootstrap({m: points[m] for m in resampled}, data, n_bootstrap=n_bootstrap,
                             rng=rng) if resampled else {}
    results = {}
    for method in methods:
        if method in points:
            found = points[method](data)
            assert found.influence is not None
            results[method] = wald(found.effect, found.influence, found.note)
        elif method.endswith(BOOTSTRAP):
            results[method] = bootstrapped[method.removesuffix(BOOTSTRAP)]
        else:
            results[method] = unadjusted_rd(data) if method == "unadjusted_rd" else unadjusted_rr(data)
    return results


def estimate(method: str, data: NuisanceData, **options: Any) -> Estimate:
    """One named method of METHODS (see estimate_all for the options)."""
    return estimate_all([method], data, **options)[method]
