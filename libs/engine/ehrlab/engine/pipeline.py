"""The `pipeline` planner: a graph of named steps from YAML, each a registered task kind.

    name: my-pipeline
    dataset: {id: data_100, data_root: /data/Data_100}
    seed: 42
    steps:
      features:
        kind: simulate_cohort
        params: {n_patients: 1000, seed: "${seed}"}
      train:
        kind: train_catboost
        inputs: {cohort: features}            # an upstream step's outputs
        params: {lr: 0.05}
      report:
        kind: noop
        inputs: {table: {source: ./extra.csv}} # an external file or directory (hashed by content)
        after: [train]                         # ordering without data

`${seed}`, `${experiment}` and `${dataset.<key>}` in params are replaced by the spec's values
(a whole-string reference keeps the value's type).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from ehrlab.core.config import SpecModel
from ehrlab.core.errors import SpecError
from ehrlab.core.planning import ExperimentSpec, FunctionPlanner, PlanContext, Source, TaskNode


class SourceInput(SpecModel):
    source: str = Field(min_length=1)


class StepSpec(SpecModel):
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str | SourceInput] = Field(default_factory=dict)
    after: list[str] = Field(default_factory=list)
    dataset: str | None = None
    resources: dict[str, Any] | None = None
    timeout_s: float | None = Field(None, gt=0)
    max_attempts: int | None = Field(None, ge=1)
    labels: dict[str, str] = Field(default_factory=dict)


class PipelineSpec(ExperimentSpec):
    steps: dict[str, StepSpec] = Field(min_length=1)


_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def _interpolate(value: Any, scope: dict[str, Any], path: str) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, scope, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, scope, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def lookup(name: str) -> Any:
        node: Any = scope
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                raise SpecError(f"unknown reference ${{{name}}}", path=path)
            node = node[part]
        return node

    whole = _REF.fullmatch(value)
    if whole:
        return lookup(whole.group(1))
    return _REF.sub(lambda m: str(lookup(m.group(1))), value)


def plan_pipeline(spec: PipelineSpec, ctx: PlanContext) -> list[TaskNode]:
    scope = {"seed": spec.seed, "experiment": spec.name, "dataset": spec.dataset.model_dump()}
    nodes = []
    for name, step in spec.steps.items():
        where = f"steps.{name}"
        inputs: dict[str, str | Source] = {
            key: Source(ref.source) if isinstance(ref, SourceInput) else ref for key, ref in step.inputs.items()
        }
        nodes.append(TaskNode(
            name=name, kind=step.kind, params=_interpolate(step.params, scope, f"{where}.params"),
            inputs=inputs, after=step.after, dataset=step.dataset, resources=step.resources,
            timeout_s=step.timeout_s, max_attempts=step.max_attempts, labels=step.labels, spec_path=where,
        ))
    return nodes


PLANNER = FunctionPlanner("pipeline", PipelineSpec, plan_pipeline)
