"""A real Prometheus scrapes a running stack while experiments run; PromQL sees the right progress and counts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ehrlab.client import Client
from ehrlab.core.embedded.stack import Stack
from ehrlab.v1 import common_pb2
from tests.support.fixtures import require_installed
from tests.support.prometheus import Prometheus

# one private stack and Prometheus for the module: its tests stay on one xdist worker (--dist loadgroup)
pytestmark = [pytest.mark.prometheus, pytest.mark.slow, pytest.mark.xdist_group("observability")]


@dataclass
class Observed:
    stack: Stack
    prometheus: Prometheus
    client: Client

    def value(self, promql: str) -> float:
        """The query's single value now (0 when the series does not exist yet: counters start there)."""
        samples = self.prometheus.query(promql)
        assert len(samples) <= 1, samples
        return samples[0].value if samples else 0.0

    def settles_at(self, promql: str, expected: float) -> None:
        """Waits until Prometheus has scraped the value `expected` (scrapes come every second)."""
        self.prometheus.wait_for(promql, lambda samples: len(samples) == 1 and samples[0].value == expected)

    def run(self, steps: dict[str, dict]) -> int:
        experiment = self.client.submit({"name": f"observed-{uuid.uuid4().hex[:8]}", "steps": steps})
        return self.client.wait(experiment.id, timeout=120).state


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    """A private controller and result-store (counts start at zero), scraped every second."""
    require_installed("prometheus")
    stack = Stack(tmp_path_factory.mktemp("observed") / ".ehrlab", services=("result-store", "controller"),
                  durable=False, extra_env={"EHRLAB_LOCAL_CPUS": "4"}).up(timeout=120)
    prometheus = Prometheus(Path(tmp_path_factory.mktemp("prometheus")),
                            {name: [f"127.0.0.1:{p.metrics}"] for name, p in stack.processes.items()})
    try:
        prometheus.start()
        prometheus.wait_until_scraped()
        with stack.client() as client:
            yield Observed(stack, prometheus, client)
    finally:
        prometheus.stop()
        stack.down()


def noop_steps(count: int, salt: str) -> dict[str, dict]:
    """`count` independent no-op tasks, each with one result row; `salt` makes their keys new."""
    return {f"t{i}": {"kind": "noop", "params": {"payload": f"{salt}-{i}", "results": [{"i": i}]}}
            for i in range(count)}


def test_task_counts_latencies_and_cache_hits(observed: Observed) -> None:
    names = ("ehrlab_task_transitions_total{job='controller',kind='noop',state='succeeded'}",
             "ehrlab_task_transitions_total{job='controller',kind='noop',state='cached'}",
             "ehrlab_cache_hits_total{job='controller',kind='noop'}",
             "ehrlab_cache_misses_total{job='controller',kind='noop'}",
             "ehrlab_task_launch_latency_seconds_count{job='controller'}",
             "ehrlab_task_duration_seconds_count{job='controller',kind='noop',outcome='succeeded'}",
             "ehrlab_result_rows_total{job='result-store',kind='noop'}",
             "ehrlab_experiments_finished_total{job='controller',state='succeeded'}")
    succeeded, cached, hits, misses, launches, durations, rows, finished = (observed.value(n) for n in names)
    steps = noop_steps(12, uuid.uuid4().hex)

    assert observed.run(steps) == common_pb2.EXPERIMENT_STATE_SUCCEEDED
    observed.settles_at(names[0], succeeded + 12)
    observed.settles_at(names[3], misses + 12)
    observed.settles_at(names[4], launches + 12)
    observed.settles_at(names[5], durations + 12)
    observed.settles_at(names[6], rows + 12)
    observed.settles_at(names[7], finished + 1)
    assert observed.value(names[2]) == hits

    assert observed.run(steps) == common_pb2.EXPERIMENT_STATE_SUCCEEDED  # everything cached now
    observed.settles_at(names[2], hits + 12)
    observed.settles_at(names[1], cached + 12)
    observed.settles_at(names[7], finished + 2)
    assert (observed.value(names[0]), observed.value(names[3]), observed.value(names[4])) == \
        (succeeded + 12, misses + 12, launches + 12)  # nothing ran again
    # the histograms are usable as such: a launch latency quantile and a mean task duration
    assert observed.value("histogram_quantile(0.9, sum by (le) (ehrlab_task_launch_latency_seconds_bucket))") > 0
    assert 0 < observed.value("sum(ehrlab_task_duration_seconds_sum) / sum(ehrlab_task_duration_seconds_count)") < 60


def test_progress_ratio_and_running_tasks_while_an_experiment_runs(observed: Observed) -> None:
    salt = uuid.uuid4().hex
    chain = {f"s{i}": {"kind": "noop", "params": {"sleep_s": 1.5, "payload": salt},
                       **({"inputs": {"upstream": f"s{i - 1}"}} if i else {})} for i in range(4)}
    experiment = observed.client.submit({"name": f"progress-{salt[:8]}", "steps": chain})
    ratio = f"ehrlab_experiment_progress_ratio{{job='controller',experiment='{experiment.id}'}}"
    [midway] = observed.prometheus.wait_for(f"{ratio} > 0 < 1")  # one, two or three of four tasks done
    assert midway.value in (0.25, 0.5, 0.75)
    observed.prometheus.wait_for("sum(ehrlab_tasks{job='controller',kind='noop',state='running'}) == 1")  # a chain
    assert observed.client.wait(experiment.id, timeout=60).state == common_pb2.EXPERIMENT_STATE_SUCCEEDED
    # the gauge of a finished experiment is dropped (no series per experiment forever); its history stays
    observed.prometheus.wait_for(ratio, lambda samples: not samples)
    history = observed.prometheus.api("query", query=f"{ratio}[1m]")["result"]
    seen = {float(value) for _, value in history[0]["values"]}
    assert seen <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert len(seen & {0.25, 0.5, 0.75}) >= 2  # each step's progress was scraped on the way


def test_grpc_calls_are_counted_per_service_method_and_code(observed: Observed) -> None:
    submits = "ehrlab_grpc_server_handled_total{job='controller',grpc_method='SubmitExperiment',grpc_code='OK'}"
    before = observed.value(submits)
    assert observed.run(noop_steps(2, uuid.uuid4().hex)) == common_pb2.EXPERIMENT_STATE_SUCCEEDED
    observed.settles_at(submits, before + 1)
    observed.prometheus.wait_for(
        "ehrlab_grpc_server_handled_total{job='result-store',grpc_method='ReportStatus',grpc_code='OK'} > 0")
    observed.prometheus.wait_for(
        "ehrlab_grpc_server_handled_total{job='result-store',grpc_method='PutResults',grpc_code='OK'} > 0")
    with pytest.raises(Exception, match="no experiment"):
        observed.client.get_experiment("x-does-not-exist")
    observed.prometheus.wait_for(
        "ehrlab_grpc_server_handled_total{job='controller',grpc_method='GetExperiment',grpc_code='NOT_FOUND'} == 1")
    # over the cumulative buckets: a rate() needs two scrapes that differ, which one submit may not give
    p99 = observed.value("histogram_quantile(0.99, sum by (le) (ehrlab_grpc_server_handling_seconds_bucket"
                         "{job='controller',grpc_method='SubmitExperiment'}))")
    assert 0 < p99 <= 30
