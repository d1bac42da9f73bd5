"""From spec layers to a validated task graph with content-hash keys.

Merge the layers, pick the planner, validate the whole spec against its model, let the planner
produce TaskNodes, then check the graph (names, kinds, params, inputs, cycles) and compute every
task's key in topological order:

    key = sha256(canonical JSON of {kind, dataset, params (validated, defaults filled), code version,
                                    inputs: {name: upstream key | source content digest}})

Upstream tasks contribute their *keys*, which are fixed before anything runs, so the whole graph's
cache state is known at submit time and a fully cached experiment finishes without launching
anything. External sources contribute a digest of their *content* (not their path).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from ehrlab.core.artifacts import open_store
from ehrlab.core.artifacts.manifest import artifact_prefix
from ehrlab.core.config import Layer, MergedSpec, merge_layers, parse_path, spec_error, validate
from ehrlab.core.errors import SpecError
from ehrlab.core.hashing import hash_value, sha256_file
from ehrlab.core.kinds import Resources, get_kind
from ehrlab.core.planning import ExperimentSpec, OptionsSpec, PlanContext, Source, TaskNode, get_planner


@dataclass
class PlannedTask:
    seq: int
    name: str
    kind: str
    service: str
    key: str
    dataset: str
    code_version: str
    params: dict[str, Any]
    inputs: dict[str, dict[str, str]]     # name -> {node} for upstream outputs, or {uri, digest} for sources
    depends_on: list[str]                 # task names (data and ordering dependencies)
    resources: Resources
    timeout_s: float
    max_attempts: int
    labels: dict[str, str]
    forced: bool = False
    skip: bool = False

    @property
    def prefix(self) -> str:
        return artifact_prefix(self.dataset, self.kind, self.key)


@dataclass
class Plan:
    spec: ExperimentSpec
    merged: MergedSpec
    tasks: list[PlannedTask]
    options: OptionsSpec
    spec_hash: str
    labels: dict[str, str] = field(default_factory=dict)


class _SourceHasher:
    """Content digests of external inputs, remembered by (path, size, mtime, inode) for the process's life."""

    def __init__(self) -> None:
        self._files: dict[tuple[str, int, int, int], str] = {}

    def file_digest(self, path: Path) -> str:
        info = path.stat()
        token = (str(path), info.st_size, info.st_mtime_ns, info.st_ino)
        if token not in self._files:
            self._files[token] = sha256_file(path)
        return self._files[token]

    def digest(self, uri: str) -> str:
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            path = Path(parsed.path if parsed.scheme else uri)
            if path.is_file():
                return hash_value([[path.name, path.stat().st_size, self.file_digest(path)]])
            if path.is_dir():
                entries = []
                for dirpath, dirnames, filenames in os.walk(path):
                    dirnames.sort()
                    for name in sorted(filenames):
                        full = Path(dirpath, name)
                        entries.append([full.relative_to(path).as_posix(), full.stat().st_size, self.file_digest(full)])
                return hash_value(entries)
            raise FileNotFoundError(str(path))
        if parsed.scheme == "s3":
            store = open_store(f"s3://{parsed.netloc}" + (f"?{parsed.query}" if parsed.query else ""))
            prefix = parsed.path.strip("/")
            objects = list(store.list(prefix))
            if not objects:
                raise FileNotFoundError(uri)
            # object sizes and the store's own checksums (ETags) stand for the content
            etags = getattr(store, "etags", None)
            tags = etags(prefix) if etags else {}
            return hash_value([[key, size, tags.get(key, "")] for key, size in objects])
        raise ValueError(f"unsupported source URI {uri!r}")


SOURCES = _SourceHasher()


def plan_experiment(layers: Iterable[Layer], overrides: dict[str, Any] | None = None,
                    ctx: PlanContext | None = None) -> Plan:
    """Validates the spec and plans it. Raises SpecError naming the file and key path of any problem."""
    merged = merge_layers(layers)
    planner_name = merged.data.get("planner", "pipeline")
    if not isinstance(planner_name, str):
        raise SpecError("must be a planner name", path="planner", source=merged.source_of(("planner",)))
    planner = get_planner(planner_name, source=merged.source_of(("planner",)))
    spec = validate(planner.spec_model, merged)
    options = spec.options
    if overrides:
        try:
            options = OptionsSpec.model_validate({**options.model_dump(), **overrides})
        except ValidationError as exc:
            raise spec_error(exc, at=("options",), default_source="request") from None
    try:
        nodes = planner.plan(spec, ctx or PlanContext())
    except ValidationError as exc:
        raise spec_error(exc, merged) from None
    except SpecError as exc:
        if exc.source:
            raise
        raise SpecError(exc.message, path=exc.path, source=merged.source_of(parse_path(exc.path))) from None
    tasks = _build_graph(nodes, spec, options, merged)
    spec_hash = hash_value({"spec": merged.data, "options": options.model_dump()})
    return Plan(spec=spec, merged=merged, tasks=tasks, options=options, spec_hash=spec_hash,
                labels=dict(spec.labels))


def _build_graph(nodes: list[TaskNode], spec: ExperimentSpec, options: OptionsSpec,
                 merged: MergedSpec) -> list[PlannedTask]:
    if not nodes:
        raise SpecError("the experiment plans no tasks", source=merged.source_of(()))
    by_name: dict[str, TaskNode] = {}
    for node in nodes:
        if node.name in by_name:
            raise SpecError(f"two tasks are named {node.name!r}", path=node.spec_path,
                            source=merged.source_of(parse_path(node.spec_path)))
        by_name[node.name] = node

    def fail(node: TaskNode, message: str, sub: str = "") -> SpecError:
        path = ".".join(p for p in (node.spec_path, sub) if p)
        return SpecError(message, path=path, source=merged.source_of(parse_path(path)))

    deps: dict[str, list[str]] = {}
    for node in nodes:
        kind = get_kind(node.kind, path=".".join(p for p in (node.spec_path, "kind") if p),
                        source=merged.source_of(parse_path(node.spec_path)))
        allowed = {*kind.inputs, *kind.optional_inputs}
        for name in kind.inputs:
            if name not in node.inputs:
                raise fail(node, f"kind {kind.name!r} needs input {name!r}", "inputs")
        for name, ref in node.inputs.items():
            if "*" not in allowed and name not in allowed:
                raise fail(node, f"kind {kind.name!r} takes no input {name!r} "
                           f"(inputs: {', '.join(sorted(allowed)) or 'none'})", f"inputs.{name}")
            if isinstance(ref, str) and ref not in by_name:
                raise fail(node, f"no task named {ref!r}", f"inputs.{name}")
        for name in node.after:
            if name not in by_name:
                raise fail(node, f"no task named {name!r}", "after")
        deps[node.name] = sorted({*(r for r in node.inputs.values() if isinstance(r, str)), *node.after})

    order = _topological_order([n.name for n in nodes], deps, by_name, merged)
    forced = _select(options.force, nodes, "options.force", merged)
    skipped = _select(options.skip, nodes, "options.skip", merged)
    forced = _downstream(forced, deps)  # forcing a task forces everything that uses it

    planned: dict[str, PlannedTask] = {}
    for seq, name in enumerate(order):
        node = by_name[name]
        kind = get_kind(node.kind)
        try:
            params = kind.validate_params(node.params, path=".".join(p for p in (node.spec_path, "params") if p))
        except SpecError as exc:  # blame the layer that set the offending value, not the one that named the step
            raise SpecError(exc.message, path=exc.path, source=merged.source_of(parse_path(exc.path))) from None
        params_json = params.model_dump(mode="json")
        dataset = node.dataset or spec.dataset.id
        inputs: dict[str, dict[str, str]] = {}
        key_inputs: dict[str, str] = {}
        for input_name, ref in sorted(node.inputs.items()):
            if isinstance(ref, Source):
                try:
                    digest = SOURCES.digest(ref.uri)
                except (FileNotFoundError, ValueError) as exc:
                    raise fail(node, f"input source {ref.uri!r} cannot be read ({exc})",
                               f"inputs.{input_name}") from None
                inputs[input_name] = {"uri": ref.uri, "digest": digest}
                key_inputs[input_name] = f"source:{digest}"
            else:
                upstream = planned[ref]
                inputs[input_name] = {"node": ref}
                key_inputs[input_name] = f"{upstream.dataset}/{upstream.kind}/{upstream.key}"
        resources = kind.resources
        if node.resources:
            try:
                resources = Resources.model_validate({**kind.resources.model_dump(), **node.resources})
            except ValidationError as exc:
                raise spec_error(exc, merged, at=(*parse_path(node.spec_path), "resources")) from None
        code_version = kind.code_version
        key = hash_value({"kind": kind.name, "dataset": dataset, "params": params_json,
                          "inputs": key_inputs, "code": code_version})[:40]
        planned[name] = PlannedTask(
            seq=seq, name=name, kind=kind.name, service=kind.service, key=key, dataset=dataset,
            code_version=code_version, params=params_json, inputs=inputs, depends_on=deps[name],
            resources=resources, timeout_s=(node.timeout_s or kind.timeout_s) * options.timeout_factor,
            max_attempts=node.max_attempts or options.max_attempts,
            labels={**spec.labels, **node.labels}, forced=name in forced, skip=name in skipped,
        )
        artifact_prefix(dataset, kind.name, key)  # validates the dataset name
    return [planned[name] for name in order]


def _topological_order(names: list[str], deps: dict[str, list[str]], by_name: dict[str, TaskNode],
                       merged: MergedSpec) -> list[str]:
    """Kahn's algorithm, keeping the planner's order among ready tasks; a cycle is named in the error."""
    remaining = {name: len(deps[name]) for name in names}
    users: dict[str, list[str]] = {name: [] for name in names}
    for name in names:
        for dep in deps[name]:
            users[dep].append(name)
    ready = [i for i, name in enumerate(names) if remaining[name] == 0]  # a heap of planner positions
    position = {name: i for i, name in enumerate(names)}
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for user in users[name]:
            remaining[user] -= 1
            if remaining[user] == 0:
                heapq.heappush(ready, position[user])
    if len(order) < len(names):
        cycle = _find_cycle({n for n in names if remaining[n] > 0}, deps)
        node = by_name[cycle[0]]
        raise SpecError(f"dependency cycle: {' -> '.join(cycle)}", path=node.spec_path,
                        source=merged.source_of(parse_path(node.spec_path)))
    return order


def _find_cycle(stuck: set[str], deps: dict[str, list[str]]) -> list[str]:
    start = min(stuck)
    path, seen = [start], {start: 0}
    while True:
        nxt = min(d for d in deps[path[-1]] if d in stuck)
        if nxt in seen:
            return [*path[seen[nxt]:], nxt]
        seen[nxt] = len(path)
        path.append(nxt)


def _select(selectors: list[str], nodes: list[TaskNode], path: str, merged: MergedSpec) -> set[str]:
    """Task names matching each selector: a kind name or a task name."""
    chosen: set[str] = set()
    for i, selector in enumerate(selectors):
        hits = {n.name for n in nodes if selector in (n.kind, n.name)}
        if not hits:
            raise SpecError(f"{selector!r} is neither a kind nor a task of this experiment",
                            path=f"{path}[{i}]", source=merged.source_of(parse_path(path)) or "request")
        chosen |= hits
    return chosen


def _downstream(names: set[str], deps: dict[str, list[str]]) -> set[str]:
    users: dict[str, set[str]] = {}
    for name, upstream in deps.items():
        for dep in upstream:
            users.setdefault(dep, set()).add(name)
    result, stack = set(names), list(names)
    while stack:
        for user in users.get(stack.pop(), ()):
            if user not in result:
                result.add(user)
                stack.append(user)
    return result

