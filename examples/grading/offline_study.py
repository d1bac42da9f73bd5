"""A note-grading study end to end, offline, on the embedded stack.

    .venv/bin/python examples/grading/offline_study.py            # starts `ehrlab up` if needed

Loads the example cases and synthetic ones, registers two offline generators (complete notes, and
notes that keep 60% of the facts) and the offline MiniLM grader, runs 3 notes per case and pair
with 2 grades per note and rubric, then writes the report (report.md, report.json, pairs.png).
Running it again resumes: nothing finished is recomputed. The offline backend is a baseline, not an
LLM: to compare real models, add them with `ehrlab grading models add` (docs/grading.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ehrlab.cli.main import ensure_stack
from ehrlab.client import Client
from ehrlab.grading.analysis import markdown, report_from_store, write_report
from ehrlab.grading.cases import load_cases
from ehrlab.grading.cli import run_spec
from ehrlab.grading.client import GradingClient
from ehrlab.grading.model import ExperimentDefinition, ModelSpec, Vendor
from ehrlab.grading.synthetic import generated_cases

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=".ehrlab", help="embedded stack home")
    parser.add_argument("--experiment", default="offline-demo")
    parser.add_argument("--cases", type=int, default=12, help="synthetic cases besides the example files")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--out", default="reports/grading-offline-demo")
    args = parser.parse_args()

    ensure_stack(args.home)
    client = Client.connect(home=args.home)
    store = GradingClient(client.channel("result-store"))

    cases = store.put_cases([*load_cases([HERE / "cases"]),
                             *generated_cases(args.cases, seed=7, ineligible_fraction=0.1, prefix="demo")])
    store.create_experiment(ExperimentDefinition(name=args.experiment, note_replications=3, grade_replications=2,
                                                 description="offline baseline: complete vs sparse notes"))
    store.add_cases(args.experiment, [c.id for c in cases])
    grader = store.add_model(ModelSpec(vendor=Vendor.OFFLINE, model="template"))
    sparse = store.add_model(ModelSpec(vendor=Vendor.OFFLINE, model="template:0.6"))
    store.add_pair(args.experiment, grader.id, grader.id)
    store.add_pair(args.experiment, sparse.id, grader.id)

    submitted = client.submit(run_spec(args.experiment, workers=args.workers),
                              labels={"grading_experiment": args.experiment})
    print(f"submitted {submitted.id}; follow it with `ehrlab watch {submitted.id}`")
    final = client.wait(submitted.id)
    print(f"{final.name}: {final.counts.succeeded} ran, {final.counts.cached} cached, {final.counts.failed} failed")

    report = report_from_store(store, args.experiment)
    print(markdown(report))
    for path in write_report(report, args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
