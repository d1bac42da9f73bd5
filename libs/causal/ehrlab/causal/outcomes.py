"""Task `simulate_outcomes`: a MEDS cohort in, history features and known-truth outcomes out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ehrlab.causal import files
from ehrlab.causal.history import read_history
from ehrlab.causal.kinds import SimulateOutcomesParams
from ehrlab.causal.simulation import code_factor_weights, latent_factors, simulate
from ehrlab.core.context import TaskContext
from ehrlab.core.errors import SpecError


def simulate_outcomes(ctx: TaskContext) -> None:
    p: SimulateOutcomesParams = ctx.params  # type: ignore[assignment]
    strengths = p.strengths()
    ctx.progress(0.0, message="reading MEDS history")
    history = read_history(ctx.inputs["cohort"], index_date=p.index_date, code_prefixes=p.code_prefixes,
                           half_life_days=p.half_life_days, min_codes=p.min_codes)
    if len(history) == 0:
        raise SpecError(f"empty cohort: none of the {history.screened} patients has a known birth, no death "
                        f"by {p.index_date} and at least {p.min_codes} distinct diagnosis codes before it",
                        path="inputs.cohort")
    if len(history) < 2:
        raise SpecError(f"the cohort has only {len(history)} eligible patient(s) of {history.screened}",
                        path="inputs.cohort")
    ctx.progress(0.5, message=f"simulating {len(history)} patients")
    z = latent_factors(history.matrix(), code_factor_weights(history.codes, p.dgp_seed), history.age)
    result = simulate(z, strengths, p.outcomes, seed=p.seed, dgp_seed=p.dgp_seed)

    out = ctx.output_dir
    ids = history.subject_id
    n_codes = np.bincount(history.patient, minlength=len(history))
    pd.DataFrame({"subject_id": ids, "age": history.age, "n_codes": n_codes}).to_parquet(out / files.COHORT,
                                                                                         index=False)
    pd.DataFrame({"subject_id": ids[history.patient], "code": np.asarray(history.codes, dtype=object)[history.code],
                  "days_before": history.days_before, "weight": history.weight}).to_parquet(out / files.HISTORY,
                                                                                           index=False)
    pq.write_table(pa.table({"subject_id": pa.array(ids, pa.int64()),
                             "codes": pa.array(history.sequences, pa.list_(pa.string()))}), out / files.SEQUENCES)
    outcomes = {"subject_id": ids, "exposure": result.exposure}
    counterfactuals: dict[str, np.ndarray] = {"subject_id": ids, "propensity": result.propensity}
    for name, outcome in result.outcomes.items():
        outcomes[name] = outcome.observed
        counterfactuals.update({f"P1_{name}": outcome.p1, f"P0_{name}": outcome.p0,
                                f"Y1_{name}": outcome.y1, f"Y0_{name}": outcome.y0})
    pd.DataFrame(outcomes).to_parquet(out / files.OUTCOMES, index=False)
    pd.DataFrame(counterfactuals).to_parquet(out / files.COUNTERFACTUALS, index=False)
    truth = {
        "experiment": strengths.name,
        "strengths": {"ce": strengths.ce, "cy": strengths.cy, "y": strengths.y, "i": strengths.i},
        "seed": p.seed, "dgp_seed": p.dgp_seed, "index_date": p.index_date.isoformat(),
        "patients": len(history), "screened": history.screened, "codes": len(history.codes),
        "exposed_share": float(result.exposure.mean()),
        "outcomes": {name: {"delta": p.outcomes[name], "true_effect": o.true_effect,
                            "true_risk_ratio": o.true_risk_ratio, "observed_rate": float(o.observed.mean())}
                     for name, o in result.outcomes.items()},
    }
    files.write_json(out / files.TRUTH, truth)
    ctx.report_metrics(0, {"patients": len(history), "exposed_share": truth["exposed_share"],
                           **{f"true_effect_{name}": o.true_effect for name, o in result.outcomes.items()}})
    ctx.progress(1.0, message="done")
