"""Task `aggregate_estimates`: did the pipeline hit the known truth, over all outer and inner runs?

Per experiment, arm, outcome and method:
- within-run SD: the spread of the K reshuffle estimates of one outer run (same patients, new folds),
  averaged over outer runs; it measures how much the answer depends on the fold split alone;
- across-run SD: the spread of the N outer-run means (new samples of patients);
- bias = mean(estimate - true effect); RMSE = sqrt(mean((estimate - true effect)^2));
- coverage: the share of all N x K 95% CIs that contain their own true effect (0.95 when the CIs are
  right); `runs covered`: the share of outer runs whose mean CI contains the true effect;
- rejects null: the share of CIs excluding no effect (0 for differences, 1 for ratios); for an outcome
  whose true effect is null this is the false-positive rate and should be near 0.05.

Writes estimates.csv (every estimate), outer_runs.csv, summary.csv, estimates.md and PNG plots.
Inputs are the estimate_effects outputs; any that are missing (a failed outer run) are simply absent.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ehrlab.causal import files
from ehrlab.causal.estimators import RISK_RATIO
from ehrlab.causal.kinds import AggregateEstimatesParams
from ehrlab.core.context import TaskContext
from ehrlab.core.errors import SpecError

GROUP = ["experiment", "arm", "outcome", "method"]
SUMMARY = "summary.csv"
OUTER_RUNS = "outer_runs.csv"
TABLE = "estimates.md"
COVERAGE_PLOT = "coverage.png"


def load_estimates(directories: list[Path]) -> pd.DataFrame:
    frames = [files.read_estimates(path) for path in directories if (path / files.ESTIMATES).is_file()]
    if not frames:
        raise SpecError("aggregate_estimates: no estimates among the inputs (every estimation failed?)")
    return pd.concat(frames, ignore_index=True).sort_values([*GROUP, "outer_run", "inner_run"], ignore_index=True)


def _sd(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def outer_run_table(estimates: pd.DataFrame) -> pd.DataFrame:
    """Mean ± SD over the K reshuffles of each outer run."""
    rows = []
    for keys, run in estimates.groupby([*GROUP, "outer_run"], sort=True):
        lower, upper, truth = run["ci95_lower"].mean(), run["ci95_upper"].mean(), run["true_effect"].mean()
        rows.append({**dict(zip([*GROUP, "outer_run"], keys, strict=True)), "estimand": run["estimand"].iloc[0],
                     "inner_runs": len(run), "mean_effect": run["effect"].mean(), "sd_effect": _sd(run["effect"]),
                     "true_effect": truth, "mean_ci95_lower": lower, "mean_ci95_upper": upper,
                     "mean_ci_covers": bool(lower <= truth <= upper)})
    return pd.DataFrame(rows)


def summary_table(estimates: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for keys, group in estimates.groupby(GROUP, sort=True):
        key = dict(zip(GROUP, keys, strict=True))
        run_rows = runs[(runs[GROUP] == pd.Series(key)).all(axis=1)]
        error = group["effect"] - group["true_effect"]
        null = 1.0 if group["estimand"].iloc[0] == RISK_RATIO else 0.0
        valid = group["ci95_lower"].notna() & group["ci95_upper"].notna()
        rejects = ((group["ci95_lower"] > null) | (group["ci95_upper"] < null))[valid]
        rows.append({
            **key, "estimand": group["estimand"].iloc[0], "outer_runs": len(run_rows), "estimates": len(group),
            "true_effect": group["true_effect"].mean(), "mean_effect": group["effect"].mean(),
            "bias": error.mean(), "rmse": math.sqrt(float((error ** 2).mean())),
            "within_run_sd": run_rows["sd_effect"].mean(), "across_run_sd": _sd(run_rows["mean_effect"]),
            "mean_std_err": group["std_err"].mean(),
            "coverage": group["covered"].mean(), "covered": int(group["covered"].sum()),
            "runs_covered": run_rows["mean_ci_covers"].mean(),
            "rejects_null": rejects.mean() if len(rejects) else float("nan"),
            "notes": int((group["note"] != "").sum()),
        })
    return pd.DataFrame(rows)


def _number(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "–"


def _share(value: float) -> str:
    return f"{value:.0%}" if math.isfinite(value) else "–"


def markdown(summary: pd.DataFrame, title: str) -> str:
    lines = [f"# {title or 'Causal estimates against the known true effect'}", "",
             "Each row pools every estimate of one method: N outer runs (new patient samples) x K inner runs "
             "(new cross-fitting folds). **true effect** is the simulated risk difference mean(P1 - P0) "
             "(for `unadjusted_rr`, the risk ratio mean(P1) / mean(P0)); **coverage** is the share of 95% CIs "
             "containing it and should be near 0.95; **rejects null** is the share of CIs excluding no effect "
             "(for the outcome with no effect it is the false-positive rate, near 0.05 when calibrated). "
             "**within-run SD** is the spread over reshuffles of the same patients, **across-run SD** the spread "
             "of the outer-run means.", ""]
    header = ("| outcome | arm | method | true effect | mean estimate | bias | RMSE | mean SE | within-run SD | "
              "across-run SD | coverage | rejects null |")
    for experiment, rows in summary.groupby("experiment", sort=True):
        first = rows.iloc[0]
        lines += [f"## {experiment}", "",
                  f"{int(first['outer_runs'])} outer run(s) x {int(first['estimates'] // max(first['outer_runs'], 1))} "
                  "inner run(s) per method.", "", header, "|" + "---|" * 12]
        for _, r in rows.sort_values(["outcome", "arm", "method"]).iterrows():
            lines.append(
                f"| {r['outcome']} | {r['arm']} | {r['method']} | {_number(r['true_effect'])} | "
                f"{_number(r['mean_effect'])} | {_number(r['bias'])} | {_number(r['rmse'])} | "
                f"{_number(r['mean_std_err'])} | {_number(r['within_run_sd'])} | {_number(r['across_run_sd'])} | "
                f"{_share(r['coverage'])} ({int(r['covered'])}/{int(r['estimates'])}) | {_share(r['rejects_null'])} |")
        lines.append("")
    return "\n".join(lines)


def plot_estimates(estimates: pd.DataFrame, experiment: str, path: Path) -> None:
    """Every estimate with its 95% CI, one panel per outcome, against the true effect (risk differences)."""
    rows = estimates[(estimates["experiment"] == experiment) & (estimates["estimand"] != RISK_RATIO)]
    outcomes = sorted(rows["outcome"].unique())
    labels = sorted({(arm, method) for arm, method in zip(rows["arm"], rows["method"], strict=True)})
    fig = Figure(figsize=(6 * len(outcomes), 0.6 * len(labels) + 1.8))
    axes = fig.subplots(1, len(outcomes), squeeze=False)
    for ax, outcome in zip(axes[0], outcomes, strict=True):
        panel = rows[rows["outcome"] == outcome]
        for position, (arm, method) in enumerate(labels):
            cell = panel[(panel["arm"] == arm) & (panel["method"] == method)]
            offsets = np.linspace(-0.3, 0.3, len(cell)) if len(cell) > 1 else np.zeros(len(cell))
            for offset, (_, r) in zip(offsets, cell.iterrows(), strict=True):
                color = "tab:green" if r["covered"] else "tab:red"
                ax.plot([r["ci95_lower"], r["ci95_upper"]], [position + offset] * 2, color=color, lw=0.8, alpha=0.7)
                ax.plot(r["effect"], position + offset, "o", color=color, ms=2.5)
        truth = panel["true_effect"].mean()
        ax.axvline(truth, color="black", lw=1.2, label=f"true effect {truth:.4f}")
        ax.axvline(0.0, color="grey", lw=0.8, ls=":")
        ax.set_yticks(range(len(labels)), [f"{arm} · {method}" for arm, method in labels])
        ax.set_xlabel("risk difference (95% CI; green covers the truth, red misses it)")
        ax.set_title(f"outcome {outcome}")
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{experiment}: every estimate against the true effect")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_coverage(summary: pd.DataFrame, path: Path) -> None:
    """Coverage per method with the band 0.95 ± 1.96·sqrt(0.95·0.05/n) that sampling alone allows."""
    rows = summary.sort_values(["experiment", "outcome", "arm", "method"], ignore_index=True)
    labels = [f"{r.experiment} · {r.outcome} · {r.arm} · {r.method}" for r in rows.itertuples()]
    fig = Figure(figsize=(8, 0.32 * len(rows) + 1.5))
    ax = fig.subplots()
    positions = np.arange(len(rows))
    band = 1.96 * np.sqrt(0.95 * 0.05 / rows["estimates"].to_numpy())
    ax.barh(positions, rows["coverage"], color="tab:blue", alpha=0.8)
    ax.errorbar(np.full(len(rows), 0.95), positions, xerr=band, fmt="none", ecolor="black", capsize=2,
                label="0.95 ± binomial error for this many CIs")
    ax.axvline(0.95, color="black", lw=1)
    ax.set_yticks(positions, labels, fontsize=7)
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("coverage of the true effect by 95% CIs")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict("records")]


def aggregate_estimates(ctx: TaskContext) -> None:
    p: AggregateEstimatesParams = ctx.params  # type: ignore[assignment]
    estimates = load_estimates([ctx.inputs[name] for name in sorted(ctx.inputs)])
    runs = outer_run_table(estimates)
    summary = summary_table(estimates, runs)
    out = ctx.output_dir
    estimates.to_csv(out / files.ESTIMATES, index=False)
    runs.to_csv(out / OUTER_RUNS, index=False)
    summary.to_csv(out / SUMMARY, index=False)
    (out / TABLE).write_text(markdown(summary, p.title))
    for experiment in sorted(estimates["experiment"].unique()):
        plot_estimates(estimates, experiment, out / f"estimates_{experiment or 'experiment'}.png")
    plot_coverage(summary, out / COVERAGE_PLOT)
    ctx.add_results(_records(summary))
