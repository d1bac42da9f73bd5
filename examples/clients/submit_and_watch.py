"""Submit an experiment, follow its progress, and exit non-zero unless it succeeds.

    .venv/bin/python examples/clients/submit_and_watch.py examples/pipeline/base.yaml \
        examples/pipeline/datasets/small.yaml examples/pipeline/experiments/default.yaml

Talks to the embedded stack (`ehrlab up`) or to the controller in EHRLAB_CONTROLLER_ADDR.
"""

from __future__ import annotations

import sys
from collections import Counter

from ehrlab.client import Client
from ehrlab.v1 import common_pb2


def main(spec_files: list[str]) -> int:
    with Client.connect() as client:
        experiment = client.submit(spec_files, labels={"submitted-by": "submit_and_watch.py"})
        print(f"submitted {experiment.id} ({experiment.name}): {experiment.counts.total} tasks")
        states: dict[str, int] = {}
        for event in client.watch(experiment.id):
            if event.HasField("task"):
                states[event.task.name] = event.task.state
                if not event.snapshot and event.task.state == common_pb2.TASK_STATE_FAILED:
                    print(f"  task {event.task.name} failed: {event.task.error}")
            counts = Counter(common_pb2.TaskState.Name(s).removeprefix("TASK_STATE_").lower() for s in states.values())
            print("  " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())), end="\r")
        final = client.get_experiment(experiment.id)
        print(f"\n{final.id}: {common_pb2.ExperimentState.Name(final.state)} {final.error}")
        return 0 if final.state == common_pb2.EXPERIMENT_STATE_SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
