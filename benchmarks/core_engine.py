"""Engine overhead: no-op tasks through the controller and the LocalLauncher in embedded mode, end to end.

    .venv/bin/python -m benchmarks.core_engine [--tasks 10000] [--cpus N] [--poll] [--profile DIR]

Starts a private embedded stack as `ehrlab up` does (durable PostgreSQL, result-store, controller),
runs a small warm-up experiment, then submits one pipeline of `--tasks` independent `noop` steps
(distinct params, so nothing is cached) and waits until the experiment has finished: every task
planned, stored, launched in a local worker, its outputs verified and its status reported to the
result-store. Reported: tasks/s from submit to finished, the submit call alone (planning and storing
the graph), and the CPU seconds each process group used, so the bottleneck shows. The benchmark
follows the experiment with WatchExperiment, as `ehrlab submit --wait` does; `--poll` asks
GetExperiment once a second instead. `--profile DIR` samples the controller with its workers and the
result-store with py-spy (only samples holding the GIL: Python at work).

Target: >= 300 tasks/s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from benchmarks.harness import (
    CpuMeter,
    Stopwatch,
    embedded_stack,
    hot_functions,
    machine,
    py_spy,
    scrape,
    stack_groups,
    table,
)
from ehrlab.client import FINISHED, Client
from ehrlab.v1 import common_pb2


def noop_pipeline(tasks: int, salt: str) -> dict:
    return {"name": f"bench-engine-{salt}",
            "steps": {f"t{i:05d}": {"kind": "noop", "params": {"payload": f"{salt}-{i}"}} for i in range(tasks)}}


def wait_polling(client: Client, experiment_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while client.get_experiment(experiment_id).state not in FINISHED:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{experiment_id} still running after {timeout:g}s")
        time.sleep(1.0)  # GetExperiment of a large running experiment is not free: poll gently


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--cpus", type=float, default=float(os.cpu_count() or 1),
                        help="the LocalLauncher's CPU budget (noop asks for 0.1 CPU per task)")
    parser.add_argument("--poll", action="store_true", help="poll GetExperiment instead of following the watch stream")
    parser.add_argument("--profile", type=Path, help="write py-spy profiles here and print the hottest functions")
    args = parser.parse_args()
    print(f"machine: {machine()}")

    with embedded_stack(cpus=args.cpus) as stack, stack.client() as client:
        salt = uuid.uuid4().hex[:8]
        warmup = client.submit(noop_pipeline(20, f"warm-{salt}"))
        client.wait(warmup.id, timeout=300)
        meter = CpuMeter(stack_groups(stack))
        clock = Stopwatch()
        with ExitStack() as profiling:
            if args.profile:
                profiling.enter_context(py_spy(stack.processes["controller"].pid, args.profile / "controller.txt",
                                               subprocesses=True))
                profiling.enter_context(py_spy(stack.processes["result-store"].pid,
                                               args.profile / "result-store.txt"))
            controller_metrics = stack.processes["controller"].metrics
            engine_before = scrape(controller_metrics)
            meter.start()
            with clock.measure():
                experiment = client.submit(noop_pipeline(args.tasks, salt))
                submitted = clock.seconds_so_far()
                if args.poll:
                    wait_polling(client, experiment.id, timeout=3600)
                else:
                    client.wait(experiment.id, timeout=3600)
            meter.stop()
            engine = {name: value - engine_before.get(name, 0.0) for name, value in scrape(controller_metrics).items()}
        final = client.get_experiment(experiment.id)

    succeeded = final.counts.succeeded
    state = common_pb2.ExperimentState.Name(final.state)
    print(table([{"tasks": args.tasks, "succeeded": succeeded, "state": state, "launcher cpus": args.cpus,
                  "follow": "poll" if args.poll else "watch", "submit s": submitted, "total s": clock.seconds,
                  "tasks/s": args.tasks / clock.seconds, "load 1m": clock.load}],
                title="\nEngine overhead, submit to finished (target >= 300 tasks/s on 2 cores)"))
    print(table([{"process group": name, "cpu s": used, "cpu ms/task": 1000 * used / args.tasks,
                  "share of wall": f"{100 * used / clock.seconds:.0f}%"}
                 for name, used in sorted(meter.used.items(), key=lambda item: -item[1])],
                title="\nCPU time by process group (100% = one core busy for the whole run)"))
    passes = engine.get("ehrlab_reconcile_seconds_count", 0.0)
    launches = engine.get("ehrlab_task_launch_latency_seconds_count", 0.0)
    print(table([{"reconcile passes": int(passes), "passes/s": passes / clock.seconds,
                  "ms/pass": 1000 * engine.get("ehrlab_reconcile_seconds_sum", 0.0) / max(passes, 1),
                  "engine thread busy": f"{100 * engine.get('ehrlab_reconcile_seconds_sum', 0.0) / clock.seconds:.0f}%",
                  "launches": int(launches),
                  "ready->launched ms (queued)": 1000 * engine.get("ehrlab_task_launch_latency_seconds_sum", 0.0)
                  / max(launches, 1),
                  "attempt ms (launch->end)": 1000 * engine.get("ehrlab_task_duration_seconds_sum", 0.0)
                  / max(engine.get("ehrlab_task_duration_seconds_count", 0.0), 1)}],
                title="\nThe engine loop, from the controller's own metrics"))
    if args.profile:
        for name in ("controller", "result-store"):
            print(table(hot_functions(args.profile / f"{name}.txt"),
                        title=f"\npy-spy, {name} ('main'; 'worker': its task workers): hottest functions"))


if __name__ == "__main__":
    main()
