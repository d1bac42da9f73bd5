"""Cohort kinds through the embedded stack (controller, LocalLauncher, result-store) and the data-prep catalog."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ehrlab.core.embedded.stack import Stack
from ehrlab.v1 import common_pb2, data_prep_pb2

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).parent / "fixtures" / "mimic3"


def test_simulate_sample_import_and_browse_through_the_stack(stack: Stack) -> None:
    dataset = f"cohort-{uuid.uuid4().hex[:8]}"
    spec = {
        "name": dataset, "planner": "pipeline", "dataset": {"id": dataset}, "seed": 7,
        "steps": {
            "cohort": {"kind": "simulate_cohort", "params": {"n_patients": 500, "seed": "${seed}", "shard_size": 200}},
            "sample": {"kind": "sample_cohort", "inputs": {"cohort": "cohort"}, "params": {"fraction": 0.2, "seed": 8}},
            "mimic": {"kind": "import_mimic3", "inputs": {"source": {"source": str(FIXTURES)}}},
        },
    }
    client = stack.client()
    done = client.wait(client.submit(spec).id, timeout=300)
    assert done.state == common_pb2.EXPERIMENT_STATE_SUCCEEDED, done.error
    (sampled,) = client.results(done.id, kind="sample_cohort")
    assert (sampled["population"], sampled["sampled"], sampled["seed"]) == (500, 100, 8)

    catalog = client.stub("data-prep")
    listed = {d.kind: d for d in catalog.ListDatasets(data_prep_pb2.ListDatasetsRequest()).datasets
              if d.id.startswith(f"{dataset}/")}
    assert set(listed) == {"simulate_cohort", "sample_cohort", "import_mimic3"}
    described = catalog.DescribeDataset(data_prep_pb2.DescribeDatasetRequest(id=listed["sample_cohort"].id))
    assert described.patients == 100
    preview = catalog.PreviewCohort(data_prep_pb2.PreviewCohortRequest(dataset_id=listed["import_mimic3"].id))
    assert [p.subject_id for p in preview.patients] == [101, 102, 103, 104]
    rerun = client.wait(client.submit(spec).id, timeout=120)
    assert rerun.counts.cached == rerun.counts.total == 3
