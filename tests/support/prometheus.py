"""A real Prometheus and a real Pushgateway (Debian packages) for metric, dashboard and alert tests.

Prometheus scrapes the given targets every second and evaluates rule files every second. Its first
scrape comes about 5 s after it starts (Prometheus applies new targets on a 5 s tick); after that a
value exported by a service can be queried with PromQL a second or two later:

    with Prometheus(tmp_path, {"controller": ["127.0.0.1:9101"]}) as prom:
        prom.wait_until_scraped()
        [sample] = prom.wait_for('ehrlab_tasks{state="done"}', lambda samples: samples)
        assert sample.value == 3

`promtool` checks rule files (`check_rules`) and runs their unit tests (`run_rule_tests`).
"""

from __future__ import annotations

import json
import math
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ehrlab.core.embedded.postgres import free_port
from tests.support.processes import Daemon, ServerError, http_ok, require_binary, wait_until

Targets = Sequence[str] | Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Sample:
    """One series of a PromQL result: its labels and value (the last value for a range query)."""

    labels: dict[str, str]
    value: float
    timestamp: float


def _jobs(targets: Targets, job: str) -> dict[str, list[str]]:
    if isinstance(targets, Mapping):
        return {name: list(addresses) for name, addresses in targets.items()}
    return {job: list(targets)}


def _get_json(url: str, timeout: float = 10) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:  # Prometheus explains bad queries in a JSON body
        body = json.load(exc)
    if body.get("status") != "success":
        raise ServerError(f"{url}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


class Prometheus:
    """A Prometheus server on 127.0.0.1 scraping `targets` (host:port exporters).

    `targets` is a list (one job, named `job`) or a mapping job name → list of targets.
    `extra_scrape_configs` are added verbatim (a Pushgateway's `scrape_config()`, say).
    """

    def __init__(self, root: Path, targets: Targets = (), *, job: str = "ehrlab", rule_files: Sequence[Path] = (),
                 extra_scrape_configs: Sequence[Mapping[str, Any]] = (), scrape_interval: str = "1s",
                 port: int | None = None) -> None:
        self.root = Path(root).absolute()
        self.port = port or free_port()
        self.jobs = _jobs(targets, job)
        self.rule_files = [Path(p).absolute() for p in rule_files]
        self.extra_scrape_configs = [dict(c) for c in extra_scrape_configs]
        self.scrape_interval = scrape_interval
        self.config_path = self.root / "prometheus.yml"
        self.daemon = Daemon("prometheus", [
            "prometheus", f"--config.file={self.config_path}", f"--storage.tsdb.path={self.root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
        ], self.root / "prometheus.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _scrape_configs(self) -> list[dict[str, Any]]:
        return [*({"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in self.jobs.items()),
                *self.extra_scrape_configs]

    def _write_config(self) -> None:
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval,
                       "scrape_timeout": self.scrape_interval},
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": self._scrape_configs(),
        }
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def start(self, timeout: float = 30.0) -> None:
        require_binary("prometheus")
        self._write_config()
        self.daemon.start()
        try:
            wait_until(lambda: http_ok(self.url + "/-/ready"), timeout=timeout, what=f"Prometheus on {self.url}",
                       daemons=[self.daemon])
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.daemon.stop(grace=5)

    def __enter__(self) -> Prometheus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/{path}: the `data` of the answer; a failure raises ServerError with Prometheus's reason."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return _get_json(f"{self.url}/api/v1/{path}{query}")

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """An instant query. A vector gives one Sample per series; a scalar one Sample without labels."""
        data = self.api("query", query=promql, **({"time": str(at)} if at is not None else {}))
        if data["resultType"] in ("scalar", "string"):
            stamp, value = data["result"]
            return [Sample({}, float(value), float(stamp))]
        if data["resultType"] == "matrix":
            return [Sample(s["metric"], float(s["values"][-1][1]), float(s["values"][-1][0])) for s in data["result"]]
        return [Sample(s["metric"], float(s["value"][1]), float(s["value"][0])) for s in data["result"]]

    def value(self, promql: str) -> float:
        """The single value a query returns (NaN when it returns nothing); more than one series is an error."""
        samples = self.query(promql)
        if len(samples) > 1:
            raise ServerError(f"{promql!r} returned {len(samples)} series, expected one: {samples}")
        return samples[0].value if samples else math.nan

    def wait_for(self, promql: str, condition: Callable[[list[Sample]], object] = bool, *,
                 timeout: float = 30.0) -> list[Sample]:
        """Re-runs the query until `condition(samples)` holds (default: any result); returns those samples."""
        result: list[Sample] = []

        def holds() -> bool:
            nonlocal result
            result = self.query(promql)
            return bool(condition(result))
        try:
            wait_until(holds, timeout=timeout, what=f"PromQL {promql!r} to satisfy the condition",
                       daemons=[self.daemon], interval=0.25)
        except ServerError as exc:
            raise ServerError(f"{exc}\nlast result: {result}") from None
        return result

    def targets(self) -> list[dict[str, Any]]:
        return self.api("targets")["activeTargets"]

    def wait_until_scraped(self, job: str | None = None, *, timeout: float = 30.0) -> None:
        """Waits until every target (of `job`, or of all jobs) has been scraped successfully at least once.

        Prometheus 2.42 hands new targets to its scrapers on a fixed 5 s tick, so the first scrape
        comes about 5 s after start; later values show within a scrape interval (1 s).
        """
        expected = sum(len(static.get("targets", [])) for config in self._scrape_configs()
                       if job in (None, config["job_name"]) for static in config.get("static_configs", []))

        def scraped() -> bool:
            mine = [t for t in self.targets() if job in (None, t["labels"].get("job"))]
            return len(mine) >= expected and all(t["health"] == "up" for t in mine)
        wait_until(scraped, timeout=timeout, what=f"Prometheus to scrape {job or 'every job'} (see {self.url}/targets)",
                   daemons=[self.daemon], interval=0.2)

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending or firing) with their labels, annotations and state."""
        return self.api("alerts")["alerts"]

    def rules(self) -> list[dict[str, Any]]:
        """The loaded rule groups with each rule's health and last error."""
        return self.api("rules")["groups"]


class Pushgateway:
    """A Pushgateway on 127.0.0.1; Prometheus scrapes it through `scrape_config()`."""

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        self.root = Path(root).absolute()
        self.port = port or free_port()
        self.daemon = Daemon("pushgateway", [
            "prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-admin-api",
            "--log.level=warn",
        ], self.root / "pushgateway.log")

    @property
    def address(self) -> str:
        """host:port, as prometheus_client.push_to_gateway and scrape targets want it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def scrape_config(self, job_name: str = "pushgateway") -> dict[str, Any]:
        # honor_labels keeps the job/instance labels of the pushed metrics instead of the gateway's
        return {"job_name": job_name, "honor_labels": True, "static_configs": [{"targets": [self.address]}]}

    def start(self, timeout: float = 30.0) -> None:
        require_binary("prometheus-pushgateway")
        self.daemon.start()
        try:
            wait_until(lambda: http_ok(self.url + "/-/ready"), timeout=timeout, what=f"Pushgateway on {self.url}",
                       daemons=[self.daemon])
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.daemon.stop(grace=5)

    def __enter__(self) -> Pushgateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def metrics_text(self) -> str:
        """What Prometheus would scrape from the gateway now (text exposition format)."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
            return response.read().decode()

    def groups(self) -> list[dict[str, Any]]:
        """The pushed groups, each with its grouping labels and the metrics in it."""
        return _get_json(self.url + "/api/v1/metrics")

    def wipe(self) -> None:
        """Deletes every pushed group."""
        request = urllib.request.Request(self.url + "/api/v1/admin/wipe", method="PUT")
        with urllib.request.urlopen(request, timeout=10):
            pass


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("promtool"), *args], capture_output=True, text=True, timeout=60)


def check_rules(*paths: Path) -> subprocess.CompletedProcess[str]:
    """`promtool check rules`: returncode 0 when the rule files parse and their PromQL is valid."""
    return _promtool("check", "rules", *map(str, paths))


def run_rule_tests(*paths: Path) -> subprocess.CompletedProcess[str]:
    """`promtool test rules`: runs rule unit tests (input series, expected alerts and values)."""
    return _promtool("test", "rules", *map(str, paths))
