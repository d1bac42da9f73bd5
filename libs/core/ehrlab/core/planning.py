"""Experiment specs and planners: how a spec becomes a graph of tasks.

Every spec shares an envelope (`ExperimentSpec`: name, planner, dataset, seed, options, labels,
results); a planner adds its own keys by subclassing it and turns a validated spec into TaskNodes.
Planners are registered through the `ehrlab.planners` entry point group and must stay light (no
heavy imports): the controller plans every kind of experiment.

A TaskNode names its inputs: an upstream node's name (its outputs become the input) or a Source
(an external file, directory or s3:// prefix, hashed by content at planning time).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Protocol

from pydantic import ConfigDict, Field

from ehrlab.core.config import SpecModel
from ehrlab.core.errors import SpecError


class DatasetSpec(SpecModel):
    """The dataset an experiment works on: `id` names the artifact folder; other keys are free-form."""

    model_config = ConfigDict(extra="allow")
    id: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class OptionsSpec(SpecModel):
    failfast: bool = False
    max_attempts: int = Field(3, ge=1, le=100)
    max_parallel: int = Field(0, ge=0)            # 0: bounded only by the launcher
    force: list[str] = Field(default_factory=list)  # kinds (or step names) to recompute, with everything downstream
    skip: list[str] = Field(default_factory=list)   # kinds (or step names) not to run
    timeout_factor: float = Field(1.0, gt=0)       # scales every task's timeout
    retry_backoff_s: float = Field(1.0, ge=0)      # first retry delay; doubles per attempt


class ResultsSpec(SpecModel):
    """Local files the controller appends each finished task's result rows to (embedded mode).

    Relative paths are relative to the workspace: the directory that holds the stack's `.ehrlab`.
    """

    jsonl: str = ""
    csv: str = ""


class ExperimentSpec(SpecModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=200)
    planner: str = "pipeline"
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    seed: int = 42
    options: OptionsSpec = Field(default_factory=OptionsSpec)
    labels: dict[str, str] = Field(default_factory=dict)
    results: ResultsSpec = Field(default_factory=ResultsSpec)


@dataclass(frozen=True)
class Source:
    """An external input: a local path or an s3:// URI, hashed by content when planned."""

    uri: str


@dataclass
class TaskNode:
    name: str                                                # unique within the experiment
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str | Source] = field(default_factory=dict)  # input name -> node name or Source
    after: list[str] = field(default_factory=list)          # ordering without data
    dataset: str | None = None                               # default: the spec's dataset id
    resources: dict[str, Any] | None = None                  # overrides the kind's defaults
    timeout_s: float | None = None
    max_attempts: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    spec_path: str = ""                                      # where in the spec this node came from (errors)


@dataclass
class PlanContext:
    """What a planner may use besides the spec: clients of other services, when it needs data."""

    services: Mapping[str, Any] = field(default_factory=dict)


class Planner(Protocol):
    name: str
    spec_model: type[ExperimentSpec]

    def plan(self, spec: Any, ctx: PlanContext) -> list[TaskNode]: ...


@dataclass(frozen=True)
class FunctionPlanner:
    """A planner from a spec model and a function: the usual way to declare one."""

    name: str
    spec_model: type[ExperimentSpec]
    function: Callable[[Any, PlanContext], list[TaskNode]]

    def plan(self, spec: Any, ctx: PlanContext) -> list[TaskNode]:
        return self.function(spec, ctx)


def planners() -> list[str]:
    """Names of the registered planners (entry point group `ehrlab.planners`)."""
    return sorted(ep.name for ep in entry_points(group="ehrlab.planners"))


@cache
def get_planner(name: str, *, source: str = "") -> Planner:
    """The planner `name`, loaded on first use (a broken plugin affects only its own planner)."""
    for ep in entry_points(group="ehrlab.planners", name=name):
        try:
            return ep.load()
        except Exception as exc:
            raise SpecError(f"planner {name!r} failed to load: {type(exc).__name__}: {exc}", path="planner",
                            source=source) from None
    known = planners()
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
    raise SpecError(f"unknown planner {name!r}{hint}", path="planner", source=source)
