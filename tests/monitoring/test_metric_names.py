"""Every metric a dashboard or a rule uses exists: exported by our code (its prometheus_client
definitions in libs/ and services/), recorded by a rule, or a standard series (kube-state-metrics,
dcgm-exporter, Prometheus itself); and every label a selector, a `by (...)`, a legend or an alert's
annotation names is one that metric has."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml

from tests.monitoring.promql import exported_metrics, groupings, is_standard, result_labels, selectors

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "charts" / "ehrlab" / "dashboards").glob("*.json"))
RULES = ROOT / "charts" / "ehrlab" / "files" / "prometheus-rules.yaml"
Labels = Mapping[str, frozenset[str]]


def problems(expr: str, where: str, known: Labels, shown: set[str] = frozenset()) -> list[str]:
    """What is wrong with `expr`: unknown metrics, labels a metric lacks, and labels `shown` (in a legend
    or an annotation) that its result does not carry."""
    found = []
    for selector in selectors(expr):
        if not selector.metric:
            found.append(f"{where}: a selector without a metric name")
        elif is_standard(selector.metric):
            continue
        elif selector.metric not in known:
            found.append(f"{where}: {selector.metric} is neither exported by libs/ or services/ nor recorded by a rule")
        else:
            found += [f"{where}: {selector.metric} has no label {label!r} (it has {sorted(known[selector.metric])})"
                      for label in selector.labels if label not in known[selector.metric]]
    for grouping in groupings(expr):
        for metric in grouping.metrics:
            missing = sorted(set(grouping.labels) - known[metric]) if metric in known else []
            found += [f"{where}: groups {metric} by {label!r}, which it does not have" for label in missing]
    result = result_labels(expr, known)
    if result is not None:
        found += [f"{where}: shows label {label!r}, which the query's result does not have (it has {sorted(result)})"
                  for label in sorted(shown - result)]
    return found


def rule_outputs(exported: Labels) -> dict[str, frozenset[str]]:
    """The exported series plus what each recording rule records, with the labels it keeps."""
    known = dict(exported)
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                labels = result_labels(rule["expr"], known)
                assert labels is not None, f"cannot tell the labels of {rule['record']}"
                known[rule["record"]] = labels
    return known


def dashboard_queries() -> Iterator[tuple[str, str, set[str]]]:
    """(where, PromQL, labels its legend shows) of every panel target and query variable."""
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            label_values = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
            if label_values:  # Grafana's helper: the values of a label of the series `expr` selects
                yield f"{path.stem}: variable {variable['name']}", label_values[1], {label_values[2]}
            else:
                yield f"{path.stem}: variable {variable['name']}", query, set()
        for panel in board["panels"]:
            for target in panel["targets"]:
                yield (f"{path.stem}: {panel['title']}", target["expr"],
                       set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", ""))))


def test_the_code_scan_finds_the_metric_definitions() -> None:
    exported = exported_metrics([ROOT / "libs", ROOT / "services"])
    assert exported["ehrlab_task_attempts_total"] == {"kind", "outcome"}
    assert exported["ehrlab_task_duration_seconds_bucket"] == {"kind", "outcome", "le"}
    assert exported["ehrlab_task_duration_seconds_count"] == {"kind", "outcome"}
    assert exported["ehrlab_grading_results_total"] == {"what", "outcome"}
    assert exported["ehrlab_hpo_trials"] == {"study", "state"}  # a collector's GaugeMetricFamily
    assert "ehrlab_task_duration_seconds" not in exported  # a histogram has no series of its bare name


def test_dashboards_use_only_existing_metrics_and_labels() -> None:
    known = rule_outputs(exported_metrics([ROOT / "libs", ROOT / "services"]))
    queries = list(dashboard_queries())
    assert len(queries) > 30 and len({where.split(":")[0] for where, _, _ in queries}) == len(DASHBOARDS) == 5
    assert [p for where, expr, shown in queries for p in problems(expr, where, known, shown)] == []


def test_rules_use_only_existing_metrics_and_labels() -> None:
    known = rule_outputs(exported_metrics([ROOT / "libs", ROOT / "services"]))
    found = []
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            where = f"rule {rule.get('record') or rule.get('alert')}"
            text = " ".join(rule.get("annotations", {}).values())
            shown = set(re.findall(r"\$labels\.(\w+)", text)) - set(rule.get("labels", {}))
            found += problems(rule["expr"], where, known, shown)
    assert found == []


def test_the_check_reports_unknown_metrics_and_labels() -> None:
    known = rule_outputs(exported_metrics([ROOT / "libs", ROOT / "services"]))
    assert problems("sum by (kind) (ehrlab_trainer_tokens_per_second)", "p", known) == [
        "p: ehrlab_trainer_tokens_per_second is neither exported by libs/ or services/ nor recorded by a rule"]
    assert problems('sum by (experiment, what) (rate(ehrlab_grading_results_total{outcome="ok"}[5m]))', "p",
                    known) == ["p: groups ehrlab_grading_results_total by 'experiment', which it does not have"]
    assert problems('ehrlab_grading_results_total{experiment="e1"}', "p", known) == [
        "p: ehrlab_grading_results_total has no label 'experiment' (it has ['outcome', 'what'])"]
    assert problems("sum by (what) (ehrlab_grading_results_total)", "p", known, {"what", "experiment"}) == [
        "p: shows label 'experiment', which the query's result does not have (it has ['what'])"]
    assert problems('rate(ehrlab_task_duration_seconds{kind="a"}[5m])', "p", known) == [
        "p: ehrlab_task_duration_seconds is neither exported by libs/ or services/ nor recorded by a rule"]
    assert problems("histogram_quantile(0.9, sum by (kind, le) (rate(ehrlab_task_duration_seconds_bucket[5m])))",
                    "p", known, {"kind", "le"}) == [
        "p: shows label 'le', which the query's result does not have (it has ['kind'])"]
    assert problems('sum by (node) (kube_pod_info{node="n"}) + ehrlab:task_failure:ratio_rate15m{kind="a"}', "p",
                    known) == []
    assert problems('{job="controller"}', "p", known) == ["p: a selector without a metric name"]
