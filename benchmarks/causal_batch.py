"""N outer x K inner runs of one experiment, end to end in embedded mode: wall time, work, coverage.

    .venv/bin/python -m benchmarks.causal_batch [--n-runs 20] [--inner-runs 5] [--patients 8000]
        [--sample-fraction 0.5] [--arms baseline]

Starts a private embedded stack (PostgreSQL, result-store, controller; the LocalLauncher on every core),
submits a causal_batch spec (simulated cohort, CatBoost arm by default) and waits for it. Reported: the
wall time from submit to finish; the task count and the summed duration of all tasks per kind — the
time a runner doing the same steps one after another would take, the reference runner's way (the
ratio of the two is what parallel execution and stage-1 sharing buy); then the aggregate's coverage,
bias and RMSE per method and outcome. A second submission of the same spec measures a fully cached rerun.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

from benchmarks.harness import embedded_stack, load, machine, table

EXPERIMENT = "ce0p62_cy0p62_y0p2_i0p2"


def spec(args: argparse.Namespace) -> dict[str, Any]:
    return {"name": f"causal-bench-{args.n_runs}x{args.inner_runs}", "planner": "causal_batch",
            "experiments": [EXPERIMENT], "n_runs": args.n_runs, "inner_runs": args.inner_runs,
            "arms": args.arms.split(","), "sample_fraction": args.sample_fraction, "base_seed": 42,
            "data": {"simulate": {"n_patients": args.patients, "seed": 42}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-runs", type=int, default=20)
    parser.add_argument("--inner-runs", type=int, default=5)
    parser.add_argument("--patients", type=int, default=8_000)
    parser.add_argument("--sample-fraction", type=float, default=0.5)
    parser.add_argument("--arms", default="baseline")
    args = parser.parse_args()

    from ehrlab.v1 import common_pb2

    print(machine())
    with embedded_stack() as stack:
        client = stack.client()
        load_before, start = load(), time.perf_counter()
        experiment = client.submit(spec(args))
        final = client.wait(experiment.id)
        wall = time.perf_counter() - start
        print(f"{final.name}: {common_pb2.ExperimentState.Name(final.state)} in {wall:.1f} s "
              f"(load {load_before:.1f} -> {load():.1f}); {final.counts.total} tasks, "
              f"{final.counts.succeeded} run, {final.counts.cached} cached, {final.counts.failed} failed")
        work: dict[str, list[float]] = defaultdict(list)
        for task in client.tasks(experiment.id):
            if task.times.HasField("started") and task.times.HasField("finished"):
                work[task.kind].append(task.times.finished.ToDatetime().timestamp()
                                       - task.times.started.ToDatetime().timestamp())
        rows = [{"kind": kind, "tasks": len(v), "sum_s": sum(v), "mean_s": sum(v) / len(v), "max_s": max(v)}
                for kind, v in sorted(work.items())]
        serial = sum(r["sum_s"] for r in rows)
        print(table([*rows, {"kind": "all", "tasks": sum(r["tasks"] for r in rows), "sum_s": serial,
                             "mean_s": "", "max_s": ""}], title="\ntask durations"))
        print(f"\none after another the tasks take {serial:.1f} s; end to end {wall:.1f} s: "
              f"ratio {wall / serial:.2f}")
        summary = client.results(experiment.id, kind="aggregate_estimates")
        print(table([{"outcome": r["outcome"], "method": r["method"], "estimates": int(r["estimates"]),
                      "true": r["true_effect"], "mean": r["mean_effect"], "bias": r["bias"], "rmse": r["rmse"],
                      "within_sd": r["within_run_sd"], "across_sd": r["across_run_sd"], "mean_se": r["mean_std_err"],
                      "coverage": r["coverage"]} for r in sorted(summary, key=lambda r: (r["outcome"], r["method"]))],
                    title="\nagainst the true effect"))
        start = time.perf_counter()
        again = client.wait(client.submit(spec(args)).id)
        seconds = time.perf_counter() - start
        print(f"\nresubmitted: {again.counts.cached}/{again.counts.total} cached in {seconds:.1f} s")


if __name__ == "__main__":
    main()
