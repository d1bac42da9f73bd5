"""Quality of the synthetic EHR generator on a held-out simulated cohort, against the issue's targets.

    .venv/bin/python -m benchmarks.ehrgen_quality [--patients 30000] [--size small] [--epochs 2] [--visits training]

Simulates a cohort with the cohort simulator (cached in --work), trains a generator with the
train_generator task kind (85% train / 5% validation / 10% held out), evaluates it with the
evaluate_generator task kind (as many synthetic records as training records, demographics drawn from
the held-out records), and prints the report's target table. Everything runs in this process on CPU
or, when one is visible, on a GPU. The JSON report and the plots stay in --work.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ehrlab.core.artifacts.local import LocalStore
from ehrlab.core.context import MemoryReporter
from ehrlab.core.runner import run_local


class PrintingReporter(MemoryReporter):
    def metrics(self, step: int, values: Any, labels: Any) -> None:
        super().metrics(step, values, labels)
        shown = " ".join(f"{k}={v:.4g}" for k, v in values.items())
        print(f"  step {step}: {shown}", flush=True)

    def progress(self, fraction: float, message: str) -> None:
        super().progress(fraction, message)
        print(f"  {fraction:.0%} {message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--size", default="small")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-len", type=int, default=512)
    parser.add_argument("--min-code-count", type=int, default=5)
    parser.add_argument("--tokenizer", default="flat")
    parser.add_argument("--n-synthetic", type=int, default=0, help="0: as many as training records")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--visits", choices=("model", "training"), default="model",
                        help="visits per fully synthetic record: where the model ends it, or drawn from training")
    parser.add_argument("--work", default="/tmp/ehrgen-quality")
    parser.add_argument("--model", default="", help="evaluate this train_generator artifact instead of training")
    args = parser.parse_args()

    import torch

    from ehrlab.cohort.simulator import SimulationConfig, simulate

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    cohort = work / f"cohort-{args.patients}-{args.seed}"
    if not cohort.exists():
        started = time.perf_counter()
        summary = simulate(SimulationConfig(n_patients=args.patients, seed=args.seed), cohort)
        print(f"simulated {summary['subjects']} patients in {time.perf_counter() - started:.0f} s")
    store = LocalStore(work / "store")
    train_params = {"seed": args.seed, "size": args.size, "epochs": args.epochs, "batch_size": args.batch_size,
                    "lr": args.lr, "max_len": args.max_len, "min_code_count": args.min_code_count,
                    "tokenizer": args.tokenizer, "log_every": 100, "checkpoint_every": 100_000}
    started, cpu_started = time.perf_counter(), time.process_time()
    if args.model:
        model = Path(args.model)
    else:
        model, _ = run_local("train_generator", train_params, {"cohort": cohort}, store=store,
                             reporter=PrintingReporter())
    train_s, train_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    training = json.loads((model / "model" / "training.json").read_text())
    records = training["records"]
    n_synthetic = args.n_synthetic or records["train"]
    evaluate_params = {"seed": args.seed, "n_synthetic": n_synthetic,
                       "sampling": {"max_visits": 128, "max_codes_per_visit": 40, "batch_size": 512,
                                    "visits": args.visits}}
    started, cpu_started = time.perf_counter(), time.process_time()
    evaluation, _ = run_local("evaluate_generator", evaluate_params, {"model": model, "cohort": cohort}, store=store,
                              reporter=PrintingReporter())
    evaluate_s, evaluate_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    report = json.loads((evaluation / "report.json").read_text())
    result = {"train_params": train_params, "records": records, "parameters": training["parameters"],
              "steps": training["steps"], "train_seconds": train_s, "train_cpu_seconds": train_cpu_s,
              "evaluate_seconds": evaluate_s, "evaluate_cpu_seconds": evaluate_cpu_s,
              "device": training["device"], "report": report, "artifacts": str(evaluation)}
    (work / "result.json").write_text(json.dumps(result, indent=1))
    print(f"\n{training['parameters']:,} parameters, {records['train']:,} training records, {training['steps']} steps "
          f"in {train_s / 60:.1f} min ({train_cpu_s / 60:.1f} CPU min); {n_synthetic:,} synthetic records "
          f"evaluated in {evaluate_s / 60:.1f} min ({evaluate_cpu_s / 60:.1f} CPU min)")
    print(f"{'target':<34} {'value':>8}  {'bound':<8} met")
    for path, target in report["targets"].items():
        value = target["value"]
        print(f"{path:<34} {value if value is not None else float('nan'):8.4f}  {target['target']:<8} {target['met']}")
    ceiling = report["fidelity"].get("ceiling", {})
    print(f"fidelity ceiling (held-out vs training records): unigram {ceiling.get('unigram_r2', float('nan')):.3f}, "
          f"bigram {ceiling.get('bigram_r2', float('nan')):.3f}, conditional {ceiling.get('conditional_r2', 0):.3f}")
    print(f"report and plots: {evaluation}")


if __name__ == "__main__":
    main()
