"""HPO scheduling on an embedded stack: how fast a freed slot gets its next trial, how idle the GPUs stay.

    .venv/bin/python -m benchmarks.hpo_scheduling [--gpus 4] [--trials 48] [--epochs 5] [--epoch-s 0.5]

An embedded stack (result-store, controller, hpo-controller; LocalLauncher with `--gpus` simulated GPU
slots) runs one study of the hpo_synthetic task: each trial needs one GPU, sleeps `--epoch-s` per
epoch (the simulated GPU work) and reports every epoch to a median pruner, with `--gpus` trials in
parallel. From the controller's own timestamps:

- scheduling latency: from a trial's task finishing to the next trial's experiment being created
  (the j-th task to finish is replaced by the j-th experiment created after the first batch);
- slot idle share: the fraction of GPU-slot time no task held, between the first task's start and the
  last task's start (afterwards the budget is spent and slots empty by design);
- work idle share: the same with only the simulated GPU work (epochs run x epoch_s) counted as busy:
  process start-up, reporting and scheduling all count as idle.
Where a real GPU exists nothing changes: the slots are the LocalLauncher's GPU slots either way.
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.harness import embedded_stack, load, machine, percentile
from ehrlab.hpo.client import HpoClient
from ehrlab.hpo.studies import parse_definition


def _seconds(stamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=4)
    parser.add_argument("--trials", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--epoch-s", type=float, default=0.5)
    args = parser.parse_args()

    print(f"machine: {machine()}")
    with embedded_stack(("result-store", "controller", "hpo-controller"), cpus=args.gpus + 2,
                        env={"EHRLAB_LOCAL_GPUS": str(args.gpus)}) as stack:
        client = stack.client()
        hpo = HpoClient(client)
        definition = parse_definition({
            "name": "sched", "metric": "loss", "direction": "minimize", "n_trials": args.trials,
            "parallelism": args.gpus, "sampler": {"seed": 0}, "pruner": {"name": "median", "n_startup_trials": 4},
            "space": {"x": {"low": -1.0, "high": 1.0}, "y": {"low": -1.0, "high": 1.0}, "category": ["a", "b"]},
            "objective": {"kind": "hpo_synthetic", "resources": {"gpu": 1, "cpu": 0.1},
                          "params": {"epochs": args.epochs, "epoch_s": args.epoch_s}}})
        start = time.monotonic()
        hpo.create(definition)
        study = hpo.wait("sched", timeout=3600)
        wall = time.monotonic() - start
        trials = hpo.trials("sched")
        created, spans, work = [], [], 0.0
        for trial in trials:
            experiment = client.get_experiment(trial.user_attrs["experiment_id"])
            created.append(_seconds(experiment.times.created))
            (task,) = client.tasks(experiment.id)
            spans.append((_seconds(task.times.started), _seconds(task.times.finished)))
            work += len(trial.intermediate) * args.epoch_s

    created.sort()
    finishes = sorted(end for _, end in spans)
    replacements = created[args.gpus:]
    latencies = [submitted - finished for finished, submitted in zip(finishes, replacements, strict=False)]
    window_start = min(begin for begin, _ in spans)
    window_end = max(begin for begin, _ in spans)
    capacity = args.gpus * (window_end - window_start)
    held = sum(max(0.0, min(end, window_end) - max(begin, window_start)) for begin, end in spans)
    last_work = sum(min(args.epoch_s * len(t.intermediate), max(0.0, window_end - begin))
                    for t, (begin, _) in zip(trials, spans, strict=True))
    counts = study.counts
    print(f"{len(trials)} trials on {args.gpus} simulated GPU slots (complete {counts.complete}, pruned "
          f"{counts.pruned}, failed {counts.failed}) in {wall:.1f} s; {work:.0f} s of simulated GPU work")
    print(f"scheduling latency (task finished -> next experiment created), {len(latencies)} slot refills: "
          f"median {statistics.median(latencies) * 1000:.0f} ms, p90 {percentile(latencies, 90) * 1000:.0f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    print(f"slot idle share (first to last task start): {1 - held / capacity:.1%}")
    print(f"work idle share (only simulated GPU work counts as busy): {1 - last_work / capacity:.1%}")
    print(f"load average after: {load():.2f}")


if __name__ == "__main__":
    main()
