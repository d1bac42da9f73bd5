"""Runs benchmarks one after another, each in its own process: `python -m benchmarks.run [NAME ...]`.

With no names it runs the core set (engine overhead, cached re-run, result-store ingest and query,
gRPC latency); `--all` runs every benchmark module in this folder. Each prints its own tables; this
prints the load average before each, since figures are only comparable on a quiet machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import load, machine

CORE = ("core_engine", "core_cached_rerun", "core_result_ingest", "core_grpc_latency")
NOT_BENCHMARKS = {"__init__", "harness", "run", "seed003_reference"}


def all_benchmarks() -> list[str]:
    return sorted(p.stem for p in Path(__file__).parent.glob("*.py") if p.stem not in NOT_BENCHMARKS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmark modules (default: {' '.join(CORE)})")
    parser.add_argument("--all", action="store_true", help="every benchmark in benchmarks/")
    args = parser.parse_args()
    names = all_benchmarks() if args.all else args.names or list(CORE)
    unknown = sorted(set(names) - set(all_benchmarks()))
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)} (there are: {', '.join(all_benchmarks())})")
    print(f"machine: {machine()}", flush=True)
    failed = []
    for name in names:
        print(f"\n=== {name}  (load average {load():.2f}, {time.strftime('%Y-%m-%d %H:%M')})", flush=True)
        if subprocess.run([sys.executable, "-m", f"benchmarks.{name}"]).returncode != 0:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
