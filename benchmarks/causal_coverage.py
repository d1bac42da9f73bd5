"""Coverage study: do the 95% CIs of TMLE, AIPW and IPW contain the true effect 95% of the time?

    .venv/bin/python -m benchmarks.causal_coverage [--replicates 300] [--patients 3000] [--cohort 20000]

Simulates one cohort (MEDS) and reads its histories once. Each replicate is an outer run: a new sample
of patients without replacement, a new draw of exposures and outcomes from the same data-generating
process (experiment ce0p62_cy0p62_y0p2_i0p2, outcomes δ = 0 and δ = 1.39), correctly specified nuisance
models (logistic regressions on the latent factors that drive exposure and outcome), then every
estimator with its influence-curve CI. Side by side on identical inputs: CausalEstimate's TMLE, AIPW and
IPW (the reference system's library). Reported per method and outcome: coverage of the replicate's true
effect, the binomial band 0.95 ± 1.96·sqrt(0.95·0.05/R) it should fall in, bias, the ratio of the mean
SE to the SD of the estimates, and how often the null (no effect) is rejected.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import machine, table

EXPERIMENT = "ce0p62_cy0p62_y0p2_i0p2"
OUTCOMES = {"null": 0.0, "effect": 1.39}


def logistic_predictions(x: np.ndarray, y: np.ndarray, *rows: np.ndarray) -> list[np.ndarray]:
    """An unpenalised logistic regression of y on x; its probabilities for each design in `rows`."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=np.inf, max_iter=500).fit(x, y)
    return [model.predict_proba(r)[:, 1] for r in rows]


def causalestimate(method: str, a: np.ndarray, y: np.ndarray, ps: np.ndarray, q1: np.ndarray,
                   q0: np.ndarray) -> dict[str, float]:
    from CausalEstimate.estimators.functional.aipw import compute_aipw_ate
    from CausalEstimate.estimators.functional.ipw import compute_ipw_ate
    from CausalEstimate.estimators.functional.tmle import compute_tmle_ate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "tmle":
            return compute_tmle_ate(a, y, ps, q0, q1)
        if method == "aipw":
            return compute_aipw_ate(a, y, ps, q0, q1)
        return compute_ipw_ate(a, y, ps, clip_percentile=0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=300)
    parser.add_argument("--patients", type=int, default=3000, help="patients per replicate (sampled)")
    parser.add_argument("--cohort", type=int, default=20_000, help="simulated cohort to sample from")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from ehrlab.causal import estimators as E
    from ehrlab.causal.history import read_history
    from ehrlab.causal.names import parse_experiment_name
    from ehrlab.causal.simulation import (
        EXPOSURE_ONLY,
        OUTCOME_ONLY,
        SHARED,
        code_factor_weights,
        latent_factors,
        simulate,
    )
    from ehrlab.cohort.simulator import SimulationConfig
    from ehrlab.cohort.simulator import simulate as simulate_cohort

    print(machine())
    start = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="causal-coverage-")) / "cohort"
    simulate_cohort(SimulationConfig(n_patients=args.cohort, seed=args.seed), root)
    history = read_history(root, index_date=date(2020, 1, 1))
    x, weights = history.matrix(), code_factor_weights(history.codes, args.seed)
    print(f"{len(history):,} eligible patients of {args.cohort:,}; {args.replicates} replicates of "
          f"{args.patients:,}")
    strengths = parse_experiment_name(EXPERIMENT)
    exposure_columns = np.r_[np.arange(30)[SHARED], np.arange(30)[EXPOSURE_ONLY]]
    outcome_columns = np.r_[np.arange(30)[SHARED], np.arange(30)[OUTCOME_ONLY]]
    methods = ("tmle", "aipw", "ipw")
    found: dict[tuple[str, str, str], list[tuple[float, float, float, float]]] = {}
    for replicate in range(1, args.replicates + 1):
        rng = np.random.default_rng([args.seed, replicate])
        sample = np.sort(rng.choice(len(history), args.patients, replace=False))
        z = latent_factors(x[sample], weights, history.age[sample])
        result = simulate(z, strengths, OUTCOMES, seed=args.seed + replicate, dgp_seed=args.seed)
        a = result.exposure.astype(float)
        (ps,) = logistic_predictions(z[:, exposure_columns], a, z[:, exposure_columns])
        zy = z[:, outcome_columns]
        for name, outcome in result.outcomes.items():
            y = outcome.observed.astype(float)
            q1, q0 = logistic_predictions(np.column_stack([a, zy]), y, np.column_stack([np.ones_like(a), zy]),
                                          np.column_stack([np.zeros_like(a), zy]))
            data = E.NuisanceData.checked(a, y, ps, q1, q0)
            truth = outcome.true_effect
            for method, estimate in E.estimate_all(list(methods), data, clip_percentile=0.99).items():
                found.setdefault((name, method, "ehrlab"), []).append(
                    (estimate.effect, estimate.std_err, estimate.ci95_lower, estimate.ci95_upper, truth))
                reference = causalestimate(method, data.a, data.y, data.ps, data.q1, data.q0)
                found.setdefault((name, method, "CausalEstimate"), []).append(
                    (reference["effect"], reference["std_err"], reference["CI95_lower"], reference["CI95_upper"],
                     truth))
    band = 1.96 * math.sqrt(0.95 * 0.05 / args.replicates)
    rows: list[dict[str, Any]] = []
    for (outcome, method, library), values in sorted(found.items()):
        v = np.asarray(values)
        coverage = float(np.mean((v[:, 2] <= v[:, 4]) & (v[:, 4] <= v[:, 3])))
        rows.append({"outcome": outcome, "method": method, "library": library,
                     "true (mean)": float(v[:, 4].mean()), "bias": float((v[:, 0] - v[:, 4]).mean()),
                     "SE/SD": float(v[:, 1].mean() / (v[:, 0] - v[:, 4]).std(ddof=1)),
                     "coverage": coverage, "in band": abs(coverage - 0.95) <= band,
                     "rejects null": float(np.mean((v[:, 2] > 0) | (v[:, 3] < 0)))})
    print(table(rows, title=f"\ncoverage over {args.replicates} replicates (band 0.95 ± {band:.3f})"))
    ours = {(r["outcome"], r["method"]): r["coverage"] for r in rows if r["library"] == "ehrlab"}
    theirs = {(r["outcome"], r["method"]): r["coverage"] for r in rows if r["library"] == "CausalEstimate"}
    print("\ncoverage ratio ehrlab / CausalEstimate: "
          + ", ".join(f"{o}/{m} {ours[(o, m)] / theirs[(o, m)]:.3f}" for o, m in sorted(ours)))
    print(f"wall {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
