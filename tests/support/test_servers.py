"""The test servers themselves: they start, answer, and leave nothing running when stopped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, push_to_gateway, start_http_server

from ehrlab.core.embedded.postgres import free_port
from tests.support.fixtures import require_installed
from tests.support.processes import Daemon, ServerError
from tests.support.prometheus import Prometheus, Pushgateway, check_rules, run_rule_tests
from tests.support.s3server import RadosGateway


@pytest.fixture
def exporter() -> Iterator[tuple[str, Gauge, Counter]]:
    """A prometheus_client exporter on a free port, as every ehrlab service runs one."""
    registry = CollectorRegistry()
    queue = Gauge("demo_queue_depth", "Tasks waiting", ["kind"], registry=registry)
    done = Counter("demo_tasks_done", "Tasks finished", registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{port}", queue, done
    server.shutdown()
    thread.join()


RULES = """
groups:
  - name: demo
    rules:
      - alert: QueueTooDeep
        expr: demo_queue_depth > 10
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.kind }} queue is {{ $value }} deep"}
"""


@pytest.mark.prometheus
def test_promtool_checks_rules_and_runs_their_tests(tmp_path: Path) -> None:
    require_installed("promtool")
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    assert check_rules(rules).returncode == 0
    rule_tests = tmp_path / "rules_test.yml"
    rule_tests.write_text(f"""
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'demo_queue_depth{{kind="train"}}'
        values: '5 20'
    alert_rule_test:
      - {{eval_time: 0m, alertname: QueueTooDeep, exp_alerts: []}}
      - eval_time: 1m
        alertname: QueueTooDeep
        exp_alerts:
          - exp_labels: {{severity: warning, kind: train}}
            exp_annotations: {{summary: "train queue is 20 deep"}}
""")
    tested = run_rule_tests(rule_tests)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text("groups: [{name: x, rules: [{alert: A, expr: 'sum('}]}]")
    assert check_rules(broken).returncode != 0


@pytest.mark.slow
@pytest.mark.prometheus
def test_prometheus_scrapes_answers_promql_and_fires_alerts(prometheus_factory: Callable[..., Prometheus],
                                                            exporter: tuple[str, Gauge, Counter],
                                                            tmp_path: Path) -> None:
    target, queue, done = exporter
    queue.labels(kind="train").set(7)
    done.inc(3)
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    prometheus = prometheus_factory({"worker": [target]}, rule_files=[rules])
    prometheus.wait_until_scraped()
    [sample] = prometheus.wait_for('demo_queue_depth{kind="train"}')
    assert sample.value == 7 and sample.labels["job"] == "worker" and sample.labels["instance"] == target
    assert prometheus.value("sum(demo_tasks_done_total)") == 3
    assert prometheus.value("scalar(vector(4))") == 4
    assert prometheus.query("demo_no_such_metric") == []
    with pytest.raises(ServerError, match="bad_data"):
        prometheus.query("sum(")
    assert prometheus.alerts() == []

    queue.labels(kind="train").set(20)
    prometheus.wait_for('ALERTS{alertname="QueueTooDeep", alertstate="firing"}')
    [alert] = prometheus.alerts()
    assert alert["annotations"]["summary"] == "train queue is 20 deep"
    assert prometheus.rules()[0]["rules"][0]["health"] == "ok"


@pytest.mark.slow
@pytest.mark.prometheus
def test_pushed_metrics_reach_prometheus_through_the_pushgateway(
        prometheus_factory: Callable[..., Prometheus], pushgateway: Pushgateway) -> None:
    registry = CollectorRegistry()
    Gauge("demo_batch_rows", "Rows a batch job wrote", registry=registry).set(1234)
    push_to_gateway(pushgateway.address, job="nightly-import", registry=registry)
    assert [g["labels"]["job"] for g in pushgateway.groups()] == ["nightly-import"]
    assert "demo_batch_rows" in pushgateway.metrics_text()

    prometheus = prometheus_factory(extra_scrape_configs=[pushgateway.scrape_config()])
    prometheus.wait_until_scraped("pushgateway")
    [sample] = prometheus.wait_for("demo_batch_rows")
    assert sample.value == 1234 and sample.labels["job"] == "nightly-import"  # the pushed job, not the gateway's
    pushgateway.wipe()
    assert pushgateway.groups() == []


def running_pids(*daemons: Daemon) -> list[int]:
    return [d.process.pid for d in daemons if d.process is not None and psutil.pid_exists(d.process.pid)]


@pytest.mark.prometheus
def test_stopped_prometheus_and_pushgateway_leave_no_process(tmp_path: Path) -> None:
    require_installed("prometheus", "prometheus-pushgateway")
    with Prometheus(tmp_path / "p") as prometheus, Pushgateway(tmp_path / "g") as gateway:
        pids = running_pids(prometheus.daemon, gateway.daemon)
        assert len(pids) == 2
    assert not [pid for pid in pids if psutil.pid_exists(pid)]


@pytest.mark.s3
def test_radosgw_starts_quickly_and_stop_kills_every_daemon(tmp_path: Path) -> None:
    require_installed("ceph-mon", "ceph-osd", "radosgw")
    server = RadosGateway(tmp_path / "rgw")
    began = time.monotonic()
    with server:
        assert time.monotonic() - began < 30
        pids = running_pids(server.monitor, server.osd, server.gateway)
        assert len(pids) == 3
        client = server.client()
        client.make_bucket("lifecycle")
        assert client.bucket_exists("lifecycle")
        server.stop_gateway()
        server.start_gateway()
        assert client.bucket_exists("lifecycle"), "the cluster keeps data while the gateway restarts"
    assert not [pid for pid in pids if psutil.pid_exists(pid)]


def test_a_missing_server_binary_skips_locally_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing installed
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"radosgw not installed: run \./scripts/install-system-deps\.sh"):
        require_installed("radosgw")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"radosgw not installed.*CI is set"):
        require_installed("radosgw")
