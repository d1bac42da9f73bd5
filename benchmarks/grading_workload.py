"""The seed-size note-grading workload through the platform, against a vendor with a fixed latency.

    .venv/bin/python -m benchmarks.grading_workload [--cases 198] [--latency 0.2] [--workers 3,16,64]

198 cases × 1 model pair × 5 notes = 990 notes; × 2 rubrics × 2 grades = 3,960 grades, as in the
system this replaces. The vendor is a local OpenAI-compatible server (ehrlab.grading.fake_llm) that
answers every call after `--latency` seconds, so the ideal wall time with W workers is
calls × latency / W. Everything else is real: an embedded controller and result-store, the
LocalLauncher's worker processes, the content-hash cache, the `openai` SDK, the GradingStore writes.

Before the measured runs, a warm-up experiment (2 notes per worker) starts the LocalLauncher's
worker processes and their imports, as a running deployment has them; that cold start is reported
separately.

Reported per worker count: wall time from submit to the experiment's end, the ideal for the 3,960
grades alone (the target's reference: 3,960 × latency / W), the ideal for all 4,950 model calls
(notes too), and the ratios. A ratio near 1 to the second ideal means the platform adds no
bottleneck of its own. Beside it, the engine alone on the same graph: a `pipeline` of `noop` tasks
that sleep `--latency` (990 "notes", each followed by 4 "grades"), same workers and resources, so
the difference is what grading itself costs (gRPC writes, the SDK, the artifacts). Last, the CPU
each run cost per task, by part (task workers, controller, result-store, PostgreSQL): on 2 cores,
CPU per task bounds throughput whatever the number of workers.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import psutil

from ehrlab.core.embedded.stack import Stack
from ehrlab.grading.cli import run_spec
from ehrlab.grading.client import GradingClient
from ehrlab.grading.fake_llm import FakeLLM
from ehrlab.grading.model import ExperimentDefinition, ModelSpec, Vendor
from ehrlab.grading.synthetic import generated_cases
from ehrlab.v1 import common_pb2

NOTES, GRADES, RUBRICS = 5, 2, 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=198)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the vendor takes per call")
    parser.add_argument("--workers", default="3,16,64")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]

    fake = FakeLLM(latency_s=args.latency).start()
    home = Path(tempfile.mkdtemp(prefix="grading-bench-")) / ".ehrlab"
    # tasks ask for 0.05 core: enough slots for the largest worker count, on whatever cores there are
    cpus = str(max(workers) * 0.05 + 1)
    stack = Stack(home, services=("result-store", "controller"), durable=False,
                  extra_env={"EHRLAB_LOCAL_CPUS": cpus}).up(timeout=180)
    rows, cpu_rows = [], []
    try:
        client = stack.client()
        store = GradingClient(client.channel("result-store"))
        cases = store.put_cases(generated_cases(args.cases, seed=1, prefix="bench"))
        model = store.add_model(ModelSpec(vendor=Vendor.OPENAI_COMPATIBLE, model="bench",
                                          base_url=fake.openai_url))
        warm = max(workers)
        store.create_experiment(ExperimentDefinition(name="bench-warm-up", note_replications=2))
        store.add_cases("bench-warm-up", [c.id for c in cases[:warm]])
        store.add_pair("bench-warm-up", model.id, model.id)
        start = time.monotonic()
        client.wait(client.submit(run_spec("bench-warm-up", workers=warm)).id)
        print(f"warm-up: {warm} worker processes started and {len(fake.requests)} calls in "
              f"{time.monotonic() - start:.1f} s", flush=True)
        for count in workers:
            name = f"bench-w{count}"
            store.create_experiment(ExperimentDefinition(name=name, note_replications=NOTES,
                                                         grade_replications=GRADES))
            store.add_cases(name, [c.id for c in cases])
            store.add_pair(name, model.id, model.id)
            calls_before = len(fake.requests)
            before = cpu_by_part(stack)
            start = time.monotonic()
            submitted = client.submit(run_spec(name, workers=count, backoff=1.0))
            final = client.wait(submitted.id)
            wall = time.monotonic() - start
            progress = store.progress(name)
            assert final.state == common_pb2.EXPERIMENT_STATE_SUCCEEDED, final.error
            grades = progress.grades.successful
            calls = len(fake.requests) - calls_before
            ideal_grades = grades * args.latency / count
            ideal_calls = calls * args.latency / count
            grading_cpu = cpu_by_part(stack, before)
            before = cpu_by_part(stack)
            start = time.monotonic()
            reference = client.wait(client.submit(engine_reference(progress.notes.successful, RUBRICS * GRADES,
                                                                   args.latency, count)).id)
            engine_wall = time.monotonic() - start
            cpu_rows.append((count, calls, grading_cpu, cpu_by_part(stack, before)))
            assert reference.state == common_pb2.EXPERIMENT_STATE_SUCCEEDED, reference.error
            rows.append((count, progress.notes.successful, grades, calls, wall, ideal_grades, ideal_calls,
                         engine_wall))
            print(f"workers={count}: {wall:.1f} s for {progress.notes.successful} notes and {grades} grades "
                  f"({calls} calls); ideal {ideal_grades:.1f} s (grades) / {ideal_calls:.1f} s (all calls); "
                  f"engine alone on the same graph {engine_wall:.1f} s", flush=True)
    finally:
        stack.down()
        fake.stop()

    print("\n| workers | notes | grades | model calls | wall (s) | ideal, grades only (s) | ratio | "
          "ideal, all calls (s) | ratio | engine alone, noop (s) | grading / engine |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for count, notes, grades, calls, wall, ideal_grades, ideal_calls, engine_wall in rows:
        print(f"| {count} | {notes} | {grades} | {calls} | {wall:.1f} | {ideal_grades:.1f} | "
              f"{wall / ideal_grades:.2f} | {ideal_calls:.1f} | {wall / ideal_calls:.2f} | {engine_wall:.1f} | "
              f"{wall / engine_wall:.2f} |")
    print("\nCPU milliseconds per task, grading | engine alone:\n")
    print("| workers | " + " | ".join(PARTS) + " | total |")
    print("|---|" + "---|" * (len(PARTS) + 1))
    for count, tasks, grading_cpu, engine_cpu in cpu_rows:
        cells = [f"{1000 * grading_cpu[p] / tasks:.1f} \\| {1000 * engine_cpu[p] / tasks:.1f}" for p in PARTS]
        total = f"{1000 * sum(grading_cpu.values()) / tasks:.1f} \\| {1000 * sum(engine_cpu.values()) / tasks:.1f}"
        print(f"| {count} | " + " | ".join(cells) + f" | {total} |")


PARTS = ("workers", "controller", "result-store", "postgres")


def cpu_by_part(stack: Stack, since: dict[str, float] | None = None) -> dict[str, float]:
    """CPU seconds used so far by the task workers (the controller's children, running or exited), the
    controller, the result-store and PostgreSQL; minus `since` when given."""
    def cpu(process: psutil.Process) -> float:
        try:
            times = process.cpu_times()
            return times.user + times.system
        except psutil.Error:
            return 0.0

    controller = psutil.Process(stack.processes["controller"].pid)
    postmaster = psutil.Process(int((stack.home / "pg" / "postmaster.pid").read_text().split()[0]))
    reaped = controller.cpu_times()     # workers that exited and were waited for count here
    used = {"workers": sum(cpu(c) for c in controller.children(recursive=True)) + reaped.children_user
            + reaped.children_system, "controller": cpu(controller),
            "result-store": cpu(psutil.Process(stack.processes["result-store"].pid)),
            "postgres": cpu(postmaster) + sum(cpu(c) for c in postmaster.children(recursive=True))
            + postmaster.cpu_times().children_user + postmaster.cpu_times().children_system}
    return {part: value - (since or {}).get(part, 0.0) for part, value in used.items()}


def engine_reference(notes: int, grades_per_note: int, latency: float, workers: int) -> dict:
    """A pipeline of noop tasks with the grading graph's shape, latency and resources."""
    tag = f"{workers}-{time.time_ns()}"   # new keys: nothing cached
    steps: dict[str, dict] = {}
    for note in range(notes):
        steps[f"note-{note}"] = {"kind": "noop", "params": {"sleep_s": latency, "payload": f"{tag}-{note}"},
                                 "resources": {"cpu": 0.05}}
        for grade in range(grades_per_note):
            steps[f"grade-{note}-{grade}"] = {
                "kind": "noop", "inputs": {"note": f"note-{note}"}, "resources": {"cpu": 0.05},
                "params": {"sleep_s": latency, "payload": f"{tag}-{note}-{grade}"}}
    return {"name": f"engine-reference-w{workers}", "planner": "pipeline", "steps": steps,
            "options": {"max_parallel": workers}}


if __name__ == "__main__":
    main()
