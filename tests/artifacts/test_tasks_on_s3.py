"""Task attempts whose artifacts live on S3: outputs published, cached, and read back as inputs."""

from __future__ import annotations

import json

import pytest

from ehrlab.core.artifacts.manifest import read_results
from ehrlab.core.artifacts.s3 import S3Store
from ehrlab.core.runner import InputRef, TaskSpec, execute
from tests.support.s3server import RadosGateway


@pytest.mark.s3
def test_a_pipeline_of_tasks_reads_and_writes_its_artifacts_on_s3(
        s3_server: RadosGateway, s3_store: S3Store, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)  # the external source below is opened from its URI alone
    s3_store.put_bytes("raw/cohort/part-0.csv", b"id\n1\n")
    s3_store.put_bytes("raw/cohort/part-1.csv", b"id\n2\n")

    upstream = TaskSpec(task_id="t1", kind="noop", key="k-up", dataset="demo", store_uri=s3_store.uri,
                        params={"output_bytes": 6 << 20, "results": [{"auc": 0.7}]})
    first = execute(upstream)
    assert {f.path for f in first.files} == {"done.json", "blob.bin", "results.jsonl"}
    assert read_results(s3_store, upstream.output_prefix, first) == [{"auc": 0.7}]
    assert execute(upstream).created == first.created, "a complete artifact on S3 is a cache hit"

    downstream = TaskSpec(task_id="t2", kind="noop", key="k-down", dataset="demo", store_uri=s3_store.uri,
                          params={}, inputs={
                              "model": InputRef(dataset="demo", kind="noop", key="k-up", digest=first.digest),
                              "cohort": InputRef(uri=s3_store.uri_for("raw/cohort")),
                          })
    second = execute(downstream)
    seen = json.loads(s3_store.get_bytes(f"{downstream.output_prefix}/done.json"))["inputs"]
    assert seen == {"model": ["blob.bin", "done.json", "results.jsonl"], "cohort": ["part-0.csv", "part-1.csv"]}
    assert second.size > 0

    s3_store.delete(f"{upstream.output_prefix}/blob.bin")  # a manifest whose blob is gone is a miss
    assert execute(upstream).created != first.created
