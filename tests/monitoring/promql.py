"""Just enough PromQL reading to check metric and label names: which metrics an expression selects,
with which label matchers, which labels its aggregations group by, and which labels its result has.

Not a full parser: it tokenizes the expression and follows the parentheses, which is all the checks
need (the grammar itself is checked by promtool and by the real Prometheus in test_dashboards.py).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# metrics that other exporters (kube-state-metrics, cAdvisor, node-exporter, dcgm-exporter), Prometheus
# itself and prometheus_client's default collectors provide: their labels are not ours to check
STANDARD_PREFIXES = ("kube_", "container_", "node_", "kubelet_", "DCGM_", "process_", "python_", "go_",
                     "scrape_", "prometheus_")
STANDARD_NAMES = {"up", "ALERTS", "ALERTS_FOR_STATE"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
                "topk", "quantile", "limitk", "limit_ratio"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan", "start", "end"}
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<variable>\$\{[^}]*\}|\$\w+)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+(?![\w:]))
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_:][\w:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=,@(){}\[\]])
""", re.VERBOSE)
# what prometheus_client adds to a metric's name, per type, and the label its extra series carry
_SERIES = {"Counter": [("_total", ()), ("_created", ())], "Gauge": [("", ())],
           "Histogram": [("_bucket", ("le",)), ("_sum", ()), ("_count", ()), ("_created", ())],
           "Summary": [("_sum", ()), ("_count", ()), ("_created", ())], "Info": [("_info", ())],
           "CounterMetricFamily": [("_total", ()), ("_created", ())], "GaugeMetricFamily": [("", ())],
           "HistogramMetricFamily": [("_bucket", ("le",)), ("_sum", ()), ("_count", ())],
           "SummaryMetricFamily": [("_sum", ()), ("_count", ())], "InfoMetricFamily": [("_info", ())]}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: tuple[str, ...]  # the labels its matchers name


@dataclass(frozen=True)
class Grouping:
    labels: tuple[str, ...]    # by (...) / without (...)
    metrics: tuple[str, ...]   # the metrics the aggregation runs over


def tokenize(expr: str) -> list[Token]:
    tokens, position = [], 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if match is None:
            raise ValueError(f"cannot read {expr[position:position + 20]!r} in {expr!r}")
        if match.lastgroup != "space":
            tokens.append(Token(match.lastgroup or "", match.group()))
        position = match.end()
    return tokens


def _closing(tokens: list[Token], start: int) -> int:
    """The index of the bracket that closes the one at `start`."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    depth = 0
    for index in range(start, len(tokens)):
        if tokens[index].text in pairs:
            depth += 1
        elif tokens[index].text in pairs.values():
            depth -= 1
            if depth == 0:
                return index
    raise ValueError("unbalanced brackets in " + " ".join(t.text for t in tokens))


def _names_in(tokens: list[Token], start: int) -> tuple[tuple[str, ...], int]:
    """The names in the parenthesised list at `start` (`by (a, b)`) and the index after it."""
    end = _closing(tokens, start)
    return tuple(t.text for t in tokens[start + 1:end] if t.kind == "name"), end + 1


def _is_metric(tokens: list[Token], index: int) -> bool:
    token = tokens[index]
    if token.kind != "name" or token.text in KEYWORDS or token.text in AGGREGATIONS:
        return False
    following = tokens[index + 1].text if index + 1 < len(tokens) else ""
    preceding = tokens[index - 1].text if index else ""
    return following != "(" and preceding not in ("offset", "@")


def selectors(expr: str) -> list[Selector]:
    """Every metric selector in `expr`, with the labels its matchers name."""
    tokens, found, index = tokenize(expr), [], 0
    while index < len(tokens):
        token = tokens[index]
        if token.text in ("by", "without", "on", "ignoring", "group_left", "group_right") \
                and index + 1 < len(tokens) and tokens[index + 1].text == "(":
            index = _names_in(tokens, index + 1)[1]
            continue
        if token.text == "[":
            index = _closing(tokens, index) + 1
            continue
        if token.text == "{" or _is_metric(tokens, index):
            metric = "" if token.text == "{" else token.text
            brace = index if token.text == "{" else index + 1
            labels: list[str] = []
            index += 1
            if brace < len(tokens) and tokens[brace].text == "{":
                end = _closing(tokens, brace)
                matchers = tokens[brace + 1:end]
                for position, matcher in enumerate(matchers[:-2]):
                    if matcher.kind == "name" and matchers[position + 1].text in ("=", "!=", "=~", "!~"):
                        if matcher.text == "__name__":
                            metric = ast.literal_eval(matchers[position + 2].text)
                        else:
                            labels.append(matcher.text)
                index = end + 1
            found.append(Selector(metric, tuple(labels)))
            continue
        index += 1
    return found


def groupings(expr: str) -> list[Grouping]:
    """Every aggregation's by/without labels, with the metrics it aggregates."""
    tokens, found = tokenize(expr), []
    for index, token in enumerate(tokens):
        if token.text not in AGGREGATIONS or index + 1 >= len(tokens):
            continue
        position, labels = index + 1, ()
        if tokens[position].text in ("by", "without"):
            labels, position = _names_in(tokens, position + 1)
        if position >= len(tokens) or tokens[position].text != "(":
            continue
        end = _closing(tokens, position)
        argument = " ".join(t.text for t in tokens[position + 1:end])
        if end + 1 < len(tokens) and tokens[end + 1].text in ("by", "without"):
            labels, _ = _names_in(tokens, end + 2)
        if labels:
            found.append(Grouping(labels, tuple(s.metric for s in selectors(argument))))
    return found


def result_labels(expr: str, known: Mapping[str, frozenset[str]]) -> frozenset[str] | None:
    """The labels the result of `expr` carries (what a legend or an alert's $labels can show), read from
    its leading operand; None where that comes from a metric whose labels are not known."""
    tokens = tokenize(expr)
    if not tokens:
        return None
    head = tokens[0]
    if head.text == "(":
        return result_labels(" ".join(t.text for t in tokens[1:_closing(tokens, 0)]), known)
    if head.text in AGGREGATIONS:
        clause, labels, position = "", (), 1
        if tokens[1].text in ("by", "without"):
            clause = tokens[1].text
            labels, position = _names_in(tokens, 2)
        end = _closing(tokens, position)
        if not clause and end + 1 < len(tokens) and tokens[end + 1].text in ("by", "without"):
            clause = tokens[end + 1].text
            labels, _ = _names_in(tokens, end + 2)
        if clause == "without":
            inner = result_labels(" ".join(t.text for t in tokens[position + 1:end]), known)
            return None if inner is None else inner - set(labels)
        return frozenset(labels)
    if head.kind == "name" and len(tokens) > 1 and tokens[1].text == "(":  # a function: its main argument
        end = _closing(tokens, 1)
        arguments = " ".join(t.text for t in tokens[2:end])
        if head.text == "histogram_quantile":
            inner = result_labels(arguments.split(",", 1)[1], known)
            return None if inner is None else inner - {"le"}
        return result_labels(arguments, known)
    first = selectors(expr)
    return known.get(first[0].metric) if first else None


def is_standard(metric: str) -> bool:
    return metric in STANDARD_NAMES or metric.startswith(STANDARD_PREFIXES)


def exported_metrics(roots: Iterable[Path]) -> dict[str, frozenset[str]]:
    """Every series the code under `roots` exports through prometheus_client, with its labels: found
    by reading the metric definitions (Counter("name", "help", ["label", ...]), GaugeMetricFamily(...,
    labels=[...])) in modules that import them from prometheus_client."""
    series: dict[str, frozenset[str]] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "/tests/" in path.as_posix():
                continue
            source = path.read_text()
            if "prometheus_client" not in source:
                continue
            tree = ast.parse(source)
            types = {alias.asname or alias.name: alias.name for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prometheus_client")
                     for alias in node.names if alias.name in _SERIES}
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in types):
                    continue
                kind = types[node.func.id]
                keywords = {k.arg: k.value for k in node.keywords}
                name = ast.literal_eval(node.args[0] if node.args else keywords["name"])
                labels_node = (node.args[2] if len(node.args) > 2 and not kind.endswith("Family")
                               else keywords.get("labelnames", keywords.get("labels")))
                labels = frozenset(ast.literal_eval(labels_node)) if labels_node is not None else frozenset()
                if kind in ("Counter", "CounterMetricFamily"):
                    name = name.removesuffix("_total")
                for suffix, extra in _SERIES[kind]:
                    series[name + suffix] = labels | set(extra)
    return series
