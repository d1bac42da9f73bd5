"""The estimators against CausalEstimate (the reference system's library), closed forms and known truth."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from CausalEstimate.estimators.functional.aipw import compute_aipw_ate
from CausalEstimate.estimators.functional.ipw import compute_ipw_ate
from CausalEstimate.estimators.functional.tmle import compute_tmle_ate
from scipy.special import expit, logit

from ehrlab.causal import estimators as E
from ehrlab.core.errors import SpecError


def observational(n: int, rng: np.random.Generator, delta: float = 0.8) -> tuple[dict[str, np.ndarray], float]:
    """Confounded data from logistic models in two covariates; returns the arrays and the true risk difference."""
    x = rng.normal(size=(n, 2))
    ps = expit(-0.4 + 0.9 * x[:, 0] - 0.5 * x[:, 1])
    a = (rng.random(n) < ps).astype(float)
    base = -0.7 + 0.8 * x[:, 0] + 0.6 * x[:, 1]
    p1, p0 = expit(base + delta), expit(base)
    y = (rng.random(n) < np.where(a == 1, p1, p0)).astype(float)
    return {"x": x, "a": a, "y": y, "ps": ps, "p1": p1, "p0": p0}, float(np.mean(p1 - p0))


def logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Maximum-likelihood logistic regression with an intercept (Newton's method); the coefficients."""
    design = np.column_stack([np.ones(len(x)), x])
    beta = np.zeros(design.shape[1])
    for _ in range(25):
        p = expit(design @ beta)
        step = np.linalg.solve(design.T @ (design * (p * (1 - p))[:, None]), design.T @ (y - p))
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return beta


def fitted(data: dict[str, np.ndarray]) -> E.NuisanceData:
    """Correctly specified nuisance models: logistic regressions on the true covariates."""
    x, a, y = data["x"], data["a"], data["y"]
    ps = expit(np.column_stack([np.ones(len(x)), x]) @ logistic(x, a))
    beta = logistic(np.column_stack([a, x]), y)
    q1 = expit(beta[0] + beta[1] + x @ beta[2:])
    q0 = expit(beta[0] + x @ beta[2:])
    return E.NuisanceData.checked(a, y, ps, q1, q0)


@pytest.fixture
def sample() -> E.NuisanceData:
    data, _ = observational(4000, np.random.default_rng(11))
    # deliberately imperfect outcome predictions, so augmentation and targeting have work to do
    return E.NuisanceData.checked(data["a"], data["y"], data["ps"], 0.9 * data["p1"] + 0.05, 0.8 * data["p0"] + 0.1)


def test_ipw_matches_causalestimate(sample: E.NuisanceData) -> None:
    ours = E.estimate("ipw", sample, clip_percentile=0.99)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = compute_ipw_ate(sample.a, sample.y, sample.ps, clip_percentile=0.99)
    assert ours.effect == pytest.approx(theirs["effect"], rel=1e-6)
    assert ours.std_err == pytest.approx(theirs["std_err"], rel=1e-6)
    assert ours.ci95_lower == pytest.approx(theirs["CI95_lower"], rel=1e-6)
    assert ours.ci95_upper == pytest.approx(theirs["CI95_upper"], rel=1e-6)


def test_aipw_matches_causalestimate(sample: E.NuisanceData) -> None:
    ours = E.estimate("aipw", sample)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = compute_aipw_ate(sample.a, sample.y, sample.ps, sample.q0, sample.q1)
    assert ours.effect == pytest.approx(theirs["effect"], rel=1e-6)
    assert ours.std_err == pytest.approx(theirs["std_err"], rel=1e-6)
    assert ours.ci95_upper == pytest.approx(theirs["CI95_upper"], rel=1e-6)


def test_tmle_agrees_with_causalestimate_to_a_small_fraction_of_its_se(sample: E.NuisanceData) -> None:
    """CausalEstimate 0.14 fluctuates each arm separately; the reference's single clever-covariate
    fluctuation solves the same efficient score, so the two agree up to o(1/sqrt(n))."""
    ours = E.estimate("tmle", sample)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = compute_tmle_ate(sample.a, sample.y, sample.ps, sample.q0, sample.q1)
    assert abs(ours.effect - theirs["effect"]) < 0.1 * theirs["std_err"]
    assert ours.std_err == pytest.approx(theirs["std_err"], rel=0.02)


def test_tmle_solves_its_score_equation(sample: E.NuisanceData) -> None:
    qa = np.where(sample.a == 1, sample.q1, sample.q0)
    h = E.clever_covariate(sample.a, sample.ps)
    eps = E.fluctuation(sample.y, logit(qa), h)
    assert eps is not None and eps != 0
    targeted = expit(logit(qa) + eps * h)
    assert abs(np.sum(h * (sample.y - targeted))) < 1e-8 * np.abs(h).sum()
    # and the estimate is the plug-in of the targeted predictions
    q1_star, q0_star = expit(logit(sample.q1) + eps / sample.ps), expit(logit(sample.q0) - eps / (1 - sample.ps))
    assert E.tmle(sample).effect == pytest.approx(np.mean(q1_star - q0_star), rel=1e-12)


def test_saturated_models_give_the_standardisation_formula_exactly() -> None:
    """With one discrete covariate and stratum means as nuisance models, IPW (unclipped), AIPW and TMLE
    all equal the g-formula sum_x P(x) (mean(Y|A=1,x) - mean(Y|A=0,x)), and TMLE needs no fluctuation."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, 3000)
    a = (rng.random(3000) < np.array([0.2, 0.4, 0.6, 0.7])[x]).astype(float)
    y = (rng.random(3000) < np.array([0.1, 0.3, 0.4, 0.6])[x] + 0.15 * a).astype(float)
    ps, q1, q0, gformula = np.empty(3000), np.empty(3000), np.empty(3000), 0.0
    for value in range(4):
        s = x == value
        ps[s] = a[s].mean()
        q1[s], q0[s] = y[s & (a == 1)].mean(), y[s & (a == 0)].mean()
        gformula += s.mean() * (q1[s][0] - q0[s][0])
    data = E.NuisanceData.checked(a, y, ps, q1, q0)
    assert E.ipw(data, clip_percentile=1.0).effect == pytest.approx(gformula, abs=1e-12)
    assert E.aipw(data).effect == pytest.approx(gformula, abs=1e-12)
    assert E.tmle(data).effect == pytest.approx(gformula, abs=1e-9)
    qa = np.where(a == 1, q1, q0)
    assert E.fluctuation(y, logit(np.clip(qa, E.Q_BOUND, 1 - E.Q_BOUND)), E.clever_covariate(a, ps)) == \
        pytest.approx(0.0, abs=1e-9)


def test_unadjusted_closed_forms() -> None:
    # 2x2 table: exposed 30/100 events, unexposed 20/200
    a = np.r_[np.ones(100), np.zeros(200)]
    y = np.r_[np.ones(30), np.zeros(70), np.ones(20), np.zeros(180)]
    data = E.NuisanceData.checked(a, y, np.full(300, 0.5), np.full(300, 0.2), np.full(300, 0.2))
    rd = E.unadjusted_rd(data)
    assert rd.effect == pytest.approx(0.2)
    assert rd.std_err == pytest.approx(np.sqrt(0.3 * 0.7 / 100 + 0.1 * 0.9 / 200))
    assert rd.ci95_lower == pytest.approx(0.2 - 1.96 * rd.std_err)
    rr = E.unadjusted_rr(data)
    assert rr.effect == pytest.approx(3.0)
    log_se = np.sqrt(0.7 / 30 + 0.9 / 20)
    assert rr.std_err == pytest.approx(log_se)
    assert rr.ci95_upper == pytest.approx(3.0 * np.exp(1.96 * log_se))


def test_ipw_clips_each_arm_at_its_own_percentile() -> None:
    a = np.r_[np.ones(100), np.zeros(100)]
    ps = np.r_[np.linspace(0.01, 0.9, 100), np.linspace(0.1, 0.99, 100)]
    weights = E.ipw_weights(a, ps, 0.99)
    assert weights[:100].max() == pytest.approx(np.percentile(1 / ps[:100], 99))
    assert weights[100:].max() == pytest.approx(np.percentile(1 / (1 - ps[100:]), 99))
    assert np.array_equal(E.ipw_weights(a, ps, 1.0), np.where(a == 1, 1 / ps, 1 / (1 - ps)))


def test_unstable_fluctuation_falls_back_to_the_one_step_estimate() -> None:
    # every exposed patient has the outcome and no unexposed one does: the likelihood in epsilon is unbounded
    a = np.r_[np.ones(50), np.zeros(50)]
    y = a.copy()
    ps, q = np.full(100, 0.5), np.full(100, 0.5)
    data = E.NuisanceData.checked(a, y, ps, q, q)
    found = E.tmle(data)
    assert "one-step" in found.note
    assert found.effect == pytest.approx(np.mean(E.clever_covariate(a, ps) * (y - 0.5)))


def test_correctly_specified_models_hit_the_truth_and_cover_it() -> None:
    """200 replicates with logistic nuisance models fitted on the true covariates: the mean TMLE and AIPW
    estimates sit within three Monte Carlo SEs of the mean true effect, and coverage is near 0.95."""
    rng = np.random.default_rng(2026)
    found: dict[str, list[float]] = {"tmle": [], "aipw": []}
    covered = {"tmle": 0, "aipw": 0}
    truths = []
    replicates = 200
    for _ in range(replicates):
        data, truth = observational(800, rng)
        truths.append(truth)
        nuisance = fitted(data)
        for method in found:
            result = E.estimate(method, nuisance)
            found[method].append(result.effect)
            covered[method] += result.ci95_lower <= truth <= result.ci95_upper
    for method, values in found.items():
        error = np.asarray(values) - np.asarray(truths)
        assert abs(error.mean()) < 3 * error.std(ddof=1) / np.sqrt(replicates), method
        # binomial(200, 0.95): 3 SDs either side is [0.904, 0.996]
        assert 0.90 <= covered[method] / replicates <= 0.996, (method, covered[method])


def test_null_effect_is_not_found_more_often_than_chance() -> None:
    rng = np.random.default_rng(99)
    replicates, rejected = 200, {"tmle": 0, "aipw": 0, "ipw": 0}
    for _ in range(replicates):
        data, truth = observational(600, rng, delta=0.0)
        assert truth == 0.0
        nuisance = fitted(data)
        for method in rejected:
            result = E.estimate(method, nuisance, clip_percentile=1.0)
            rejected[method] += not (result.ci95_lower <= 0.0 <= result.ci95_upper)
    # P(Binomial(200, 0.05) >= 20) < 0.003: more rejections than that is not chance
    assert all(count < 20 for count in rejected.values()), rejected


def test_bootstrap_is_reproducible_and_close_to_the_influence_curve_se(sample: E.NuisanceData) -> None:
    first = E.estimate("aipw_bootstrap", sample, n_bootstrap=300, rng=np.random.default_rng(4))
    again = E.estimate("aipw_bootstrap", sample, n_bootstrap=300, rng=np.random.default_rng(4))
    assert first == again
    analytic = E.estimate("aipw", sample)
    assert first.effect == analytic.effect
    assert first.std_err == pytest.approx(analytic.std_err, rel=0.15)
    assert first.ci95_lower < first.effect < first.ci95_upper
    with pytest.raises(ValueError, match="random generator"):
        E.estimate("tmle_bootstrap", sample)


@pytest.mark.parametrize(("change", "message"), [
    ({"ps": np.r_[0.0, np.full(9, 0.5)]}, "ps must lie strictly between 0 and 1"),
    ({"a": np.ones(10)}, "every patient is exposed"),
    ({"y": np.r_[2.0, np.zeros(9)]}, "outcome must be 0 or 1"),
    ({"q1": np.full(9, 0.5)}, r"q1 has shape \(9,\)"),
    ({"q0": np.r_[np.nan, np.full(9, 0.5)]}, "q0 has 1 missing"),
])
def test_bad_input_names_the_array(change: dict[str, np.ndarray], message: str) -> None:
    arrays = {"a": np.r_[np.ones(5), np.zeros(5)], "y": np.r_[1.0, np.zeros(9)], "ps": np.full(10, 0.5),
              "q1": np.full(10, 0.5), "q0": np.full(10, 0.5)} | change
    with pytest.raises(SpecError, match=message):
        E.NuisanceData.checked(**arrays)
    with pytest.raises(SpecError, match="unknown estimation method 'dml'"):
        E.estimate("dml", E.NuisanceData.checked(np.r_[1.0, 0.0], np.r_[1.0, 0.0], np.full(2, 0.5),
                                                 np.full(2, 0.5), np.full(2, 0.5)))
