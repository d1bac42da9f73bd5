"""Every Grafana dashboard panel's PromQL runs without error against a real Prometheus that scrapes a
running stack (with the chart's recording rules loaded), after a small experiment has produced data."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ehrlab.core.embedded.stack import Stack
from tests.support.prometheus import Prometheus

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "charts" / "ehrlab" / "dashboards").glob("*.json"))
RULES = ROOT / "charts" / "ehrlab" / "files" / "prometheus-rules.yaml"
# what Grafana would put in for its built-in and the dashboards' variables
VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "${datasource}": "prometheus"}
# panels that need exporters the platform does not run (kube-state-metrics, dcgm-exporter)
EXTERNAL = ("kube_pod_", "DCGM_")


def panels() -> Iterator[tuple[str, str, str]]:
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        defaults = {f"${v['name']}": (v.get("allValue") if v.get("includeAll") else v.get("query")) or ".*"
                    for v in board["templating"]["list"] if v["name"] != "datasource"}
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for name, value in sorted({**VARIABLES, **defaults}.items(), key=lambda kv: -len(kv[0])):
                    expr = expr.replace(name, str(value))
                yield path.stem, panel["title"], expr


def test_dashboards_are_well_formed() -> None:
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert len(uids) == len(DASHBOARDS) == 5
    assert all("$" not in expr for _, _, expr in panels()), "a dashboard variable has no test value"


@pytest.mark.slow
@pytest.mark.prometheus
def test_every_panel_query_runs_against_a_scraped_stack(stack: Stack,
                                                        prometheus_factory: Callable[..., Prometheus]) -> None:
    targets = {name: [f"127.0.0.1:{process.metrics}"] for name, process in stack.processes.items()}
    prometheus = prometheus_factory(targets, rule_files=[RULES])
    client = stack.client()
    experiment = client.submit({"name": "dashboards", "planner": "pipeline", "dataset": {"id": "dash"},
                                "steps": {"a": {"kind": "noop", "params": {"results": [{"x": 1}]}},
                                          "b": {"kind": "noop", "inputs": {"a": "a"}}}})
    assert client.wait(experiment.id, timeout=120).state == 3  # succeeded
    prometheus.wait_until_scraped()
    prometheus.wait_for('rate(ehrlab_task_attempts_total{kind="noop", outcome="succeeded"}[1m])')
    errors: list[str] = []
    answered: dict[str, list[Any]] = {}
    exprs: dict[str, str] = {}
    for board, title, expr in panels():
        exprs[f"{board}: {title}"] = expr
        try:
            answered[f"{board}: {title}"] = prometheus.query(expr)
        except Exception as exc:  # the query is rejected: a bad metric selector, function or syntax
            errors.append(f"{board}: {title}: {expr}\n    {exc}")
    assert errors == []
    # the panels fed by what the stack exports now show data
    for key in ("ehrlab-tasks: Attempt outcomes", "ehrlab-experiments: Experiments finished",
                "ehrlab-tasks: Running attempts by launcher", "ehrlab-experiments: Experiments by state"):
        assert answered[key], f"{key} returned no data"
    missing = [key for key, samples in answered.items() if not samples and not any(m in exprs[key] for m in EXTERNAL)]
    print("panels without data after one small experiment:", missing)
