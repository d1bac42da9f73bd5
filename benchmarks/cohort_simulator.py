"""Cohort simulator throughput and memory: 1,000,000 patients to MEDS, 2 worker processes vs 1, side by side.

    .venv/bin/python -m benchmarks.cohort_simulator [--patients 1000000] [--shard-size 50000] [--workers 2]

Runs `simulate` twice on the same config (seed 0) into temporary directories: once with `--workers`
processes, once in this process alone (the reference), and checks that both wrote identical bytes.
Reported per run: wall and CPU time, patients and events per second, the peak resident memory of the
largest process (this one or a worker), the dataset size on disk; then the speed-up and the ratio of the
multi-process wall time to the 120 s target. CPU time and the load average are printed because on a shared
machine the wall time depends on what else runs.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

TARGET_S = 120.0


def _peak_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _run(root: Path, patients: int, shard_size: int, workers: int) -> dict[str, float]:
    from ehrlab.cohort.simulator import SimulationConfig, simulate

    config = SimulationConfig(n_patients=patients, seed=0, shard_size=shard_size)
    cpu0 = time.process_time()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    summary = simulate(config, root, workers=workers)
    wall = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (children.ru_utime + children.ru_stime) - (children0.ru_utime + children0.ru_stime)
    cpu = time.process_time() - cpu0 + child_cpu
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return {"wall_s": wall, "cpu_s": cpu, "events": summary["events"], "codes": summary["codes"],
            "withheld": summary["withheld_invalid_codes"], "disk_mib": size / 2**20,
            "peak_self_mib": _peak_mib(resource.RUSAGE_SELF), "peak_child_mib": _peak_mib(resource.RUSAGE_CHILDREN)}


def _same(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    return files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and all(
        filecmp.cmp(a / f, b / f, shallow=False) for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--shard-size", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="ehrlab-bench-cohort-"))
    try:
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        parallel = _run(scratch / "parallel", args.patients, args.shard_size, args.workers)
        serial = _run(scratch / "serial", args.patients, args.shard_size, 1)
        identical = _same(scratch / "parallel", scratch / "serial")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{args.patients:,} patients, shard size {args.shard_size:,}, events {parallel['events']:,}, "
          f"distinct codes {parallel['codes']:,}, impossible codes withheld {parallel['withheld']}, "
          f"disk {parallel['disk_mib']:.0f} MiB, outputs identical: {identical}")
    print(f"{'run':<22}{'wall s':>8}{'cpu s':>8}{'patients/s':>12}{'events/s':>12}{'peak RSS MiB':>14}")
    for name, run, peak in ((f"{args.workers} worker processes", parallel,
                             max(parallel["peak_child_mib"], parallel["peak_self_mib"])),
                            ("1 process (reference)", serial, serial["peak_self_mib"])):
        print(f"{name:<22}{run['wall_s']:>8.1f}{run['cpu_s']:>8.1f}{args.patients / run['wall_s']:>12,.0f}"
              f"{run['events'] / run['wall_s']:>12,.0f}{peak:>14,.0f}")
    print(f"speed-up {serial['wall_s'] / parallel['wall_s']:.2f}x; wall / {TARGET_S:.0f} s target = "
          f"{parallel['wall_s'] / TARGET_S:.2f}")


if __name__ == "__main__":
    main()
