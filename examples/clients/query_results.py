"""Read an experiment's result rows and training metrics, and write them to CSV.

    .venv/bin/python examples/clients/query_results.py EXPERIMENT_ID_OR_NAME [--kind estimate_effects]
"""

from __future__ import annotations

import argparse
import csv
import sys

from ehrlab.client import Client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("experiment")
    parser.add_argument("--kind", default="", help="only rows of this task kind")
    parser.add_argument("--out", default="results.csv")
    args = parser.parse_args()
    with Client.connect() as client:
        rows = client.results(args.experiment, kind=args.kind)
        columns = list(dict.fromkeys(key for row in rows for key in row))
        with open(args.out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        print(f"{len(rows)} result rows -> {args.out}")
        progress = client.progress(args.experiment)
        print(f"tasks: {progress.counts.total}, finished: {progress.ratio:.0%}")
        points = client.metrics(args.experiment)
        names = sorted({p["name"] for p in points})
        print(f"{len(points)} metric points ({', '.join(names) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
