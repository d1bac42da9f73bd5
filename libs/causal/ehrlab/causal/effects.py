"""Task `estimate_effects`: every estimator on every outcome, scored against the simulated truth.

The true effect of a row is computed over exactly the patients the estimate uses: mean(P1 - P0) for
risk differences, mean(P1) / mean(P0) for the risk ratio. Rows go to estimates.csv and, through
`ctx.add_results`, to the result-store.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ehrlab.causal import files
from ehrlab.causal.estimators import METHODS, RISK_RATIO, NuisanceData, estimate_all
from ehrlab.causal.kinds import EstimateEffectsParams
from ehrlab.core.context import TaskContext
from ehrlab.core.errors import SpecError

ESTIMATE_COLUMNS = ("experiment", "outer_run", "inner_run", "arm", "outcome", "method", "estimand", "effect",
                    "true_effect", "std_err", "ci95_lower", "ci95_upper", "covered", "n", "n_exposed",
                    "fold_seed", "note")


def estimate_outcome(rows: pd.DataFrame, truth: pd.DataFrame, name: str, p: EstimateEffectsParams,
                     rng: np.random.Generator) -> list[dict[str, Any]]:
    """One row per method for one outcome; `rows` are its predictions, `truth` its counterfactuals."""
    rows = rows.sort_values("subject_id")
    q_observed, q_flipped = rows["probas"].to_numpy(), rows["cf_probas"].to_numpy()
    exposed = rows["exposure"].to_numpy() == 1
    data = NuisanceData.checked(rows["exposure"].to_numpy(), rows["y"].to_numpy(), rows["ps"].to_numpy(),
                                np.where(exposed, q_observed, q_flipped), np.where(exposed, q_flipped, q_observed),
                                label=f"outcome {name}")
    cf = truth.reindex(rows["subject_id"].to_numpy())
    if cf[f"P1_{name}"].isna().any():
        raise SpecError(f"outcome {name}: predictions name patients the simulated outcomes do not have")
    p1, p0 = cf[f"P1_{name}"].to_numpy(), cf[f"P0_{name}"].to_numpy()
    result = []
    found_all = estimate_all(list(p.methods), data, clip_percentile=p.clip_percentile, n_bootstrap=p.n_bootstrap,
                             rng=rng)
    for method, found in found_all.items():
        estimand = METHODS[method].estimand
        true_effect = float(p1.mean() / p0.mean()) if estimand == RISK_RATIO else float(np.mean(p1 - p0))
        result.append({"outcome": name, "method": method, "estimand": estimand, "effect": found.effect,
                       "true_effect": true_effect, "std_err": found.std_err, "ci95_lower": found.ci95_lower,
                       "ci95_upper": found.ci95_upper,
                       "covered": bool(found.ci95_lower <= true_effect <= found.ci95_upper),
                       "n": len(data), "n_exposed": int(data.a.sum()), "note": found.note})
    return result


def estimate_effects(ctx: TaskContext) -> None:
    p: EstimateEffectsParams = ctx.params  # type: ignore[assignment]
    predictions, meta = files.read_predictions(ctx.inputs["predictions"])
    truth = files.read_data(ctx.inputs["data"], files.COUNTERFACTUALS)
    truth = truth.set_index("subject_id")
    rng = np.random.default_rng(p.seed)
    identity = {"experiment": p.experiment, "outer_run": p.outer_run, "inner_run": p.inner_run,
                "arm": p.arm or str(meta.get("arm", "")), "fold_seed": meta.get("fold_seed")}
    rows = []
    for name, outcome_rows in predictions.groupby("outcome", sort=True):
        if f"P1_{name}" not in truth.columns:
            raise SpecError(f"predictions have outcome {name!r}, which the simulated outcomes do not")
        rows.extend({**identity, **row} for row in estimate_outcome(outcome_rows, truth, str(name), p, rng))
    pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS)).to_csv(ctx.output_dir / files.ESTIMATES, index=False)
    ctx.add_results(rows)
