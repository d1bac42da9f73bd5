"""Offline grader throughput (MiniLM similarity), grades per second on this machine's cores.

    .venv/bin/python -m benchmarks.grading_offline [--grades 300] [--processes 2]

Grades synthetic notes against their two rubrics (about 9 criteria and 15 note sentences each),
twice each (2 grade replications, as in the seed's workload), with the offline backend, three ways,
side by side:
- one process, one torch thread (what an offline grade task does: it asks for one core);
- one process, torch's default threads (one per core) — the reference the one-thread choice is
  compared with;
- `--processes` processes of one thread each, in parallel (what `--workers` N gives on N cores).
Model loading is excluded (a worker loads the encoder once and keeps it). Runs on the CPU.
Besides grades per wall second, grades per CPU second of the grading processes: on a machine shared
with other work the wall figure drops, the CPU figure does not (one idle core would reach it).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time


def _workload(count: int, seed: int = 3) -> list[tuple[dict, list]]:
    from ehrlab.grading.backends.offline import OfflineBackend
    from ehrlab.grading.model import ModelSpec, Vendor
    from ehrlab.grading.synthetic import generated_cases

    cases = generated_cases(max(1, count // 4), seed=seed)
    writer = OfflineBackend(ModelSpec(vendor=Vendor.OFFLINE, model="template:0.8"))
    work = []
    for index, case in enumerate(cases):
        note = writer.generate_note(case.transcript, case.facts, seed=index)
        work += [(note, rubric.criteria) for rubric in case.rubrics[:2] for _ in range(2)]
    return work[:count]


def _grade(count: int, threads: int | None) -> tuple[float, float]:
    """(grades per wall second, grades per CPU second) in this process, after loading the encoder."""
    import torch

    from ehrlab.grading.backends.offline import OfflineBackend, encoder
    from ehrlab.grading.model import ModelSpec, Vendor

    work = _workload(count)
    backend = OfflineBackend(ModelSpec(vendor=Vendor.OFFLINE))
    encoder()                                    # load once (sets one thread)
    torch.set_num_threads(threads or os.cpu_count() or 1)
    backend.grade_note(*work[0], transcript="", seed=0)
    start, cpu = time.perf_counter(), time.process_time()
    for note, criteria in work:
        backend.grade_note(note, criteria, transcript="", seed=0)
    return len(work) / (time.perf_counter() - start), len(work) / (time.process_time() - cpu)


def _parallel(count: int, processes: int) -> tuple[float, float]:
    """Summed over the processes: grades per wall second, and grades per CPU second per process (mean)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        per_process = pool.starmap(_grade, [(count // processes, 1)] * processes)
    return sum(w for w, _ in per_process), sum(c for _, c in per_process) / processes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grades", type=int, default=300)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:   # fresh processes: torch's thread setting is per process
        one_thread = pool.apply(_grade, (args.grades, 1))
    with context.Pool(1) as pool:
        default_threads = pool.apply(_grade, (args.grades, None))
    parallel = _parallel(args.grades, args.processes)
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}\n")
    print("| configuration | grades/s (wall) | vs torch default threads | grades per CPU-second |")
    print("|---|---|---|---|")
    rows = [("1 process × 1 thread", one_thread), (f"1 process × {os.cpu_count()} threads (torch default)",
                                                  default_threads),
            (f"{args.processes} processes × 1 thread", parallel)]
    for label, (wall, cpu) in rows:
        print(f"| {label} | {wall:.1f} | {wall / default_threads[0]:.2f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
