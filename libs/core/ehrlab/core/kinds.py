"""Task kinds: what a task does, who runs it, and what goes into its key.

A kind is declared once, in the library that implements it, and registered through the
`ehrlab.kinds` entry point group, so the controller can plan and hash tasks of every kind without
importing their heavy implementations (torch, catboost): `run` is imported only by the task runner.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from pydantic import field_validator

from ehrlab.core.config import SpecModel
from ehrlab.core.errors import SpecError
from ehrlab.core.hashing import code_version

if TYPE_CHECKING:
    from ehrlab.core.context import TaskContext

log = logging.getLogger("ehrlab.kinds")
SERVICES = ("controller", "data-prep", "trainer", "hpo-controller", "ehr-generator", "grader", "result-store")

_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
          "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_bytes(value: str | int | float) -> int:
    """'512Mi', '4Gi', '1G' or a number of bytes -> bytes (Kubernetes quantity suffixes)."""
    if isinstance(value, (int, float)):
        return int(value)
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kKmMgGtT]i?)?\s*", value)
    if not match:
        raise ValueError(f"not a memory quantity: {value!r} (use e.g. 512Mi, 4Gi)")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


class Resources(SpecModel):
    """What one task needs: cores, memory, GPUs and optionally a node pool by name."""

    cpu: float = 1.0
    memory: int = 1 << 30
    gpu: int = 0
    node_pool: str = ""

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> int:
        return parse_bytes(value)

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("cpu must be positive")
        return value

    @field_validator("gpu")
    @classmethod
    def _gpu(cls, value: int) -> int:
        if value < 0:
            raise ValueError("gpu must be 0 or more")
        return value


@dataclass(frozen=True)
class TaskKind:
    """The declaration of a task kind.

    name:          unique kind name, e.g. `simulate_cohort`
    service:       the service whose image runs it (one of SERVICES)
    params:        the parameter model; unknown keys and wrong types are errors
    run:           "module:function" taking a TaskContext; imported lazily
    inputs:        names of required inputs (upstream outputs or sources)
    optional_inputs: names of inputs that may be absent ("*": any name, none required)
    partial_inputs: when the producer of an optional input fails, run without that input instead of
                   being skipped (aggregations over runs of which some may fail)
    version:       bump by hand to invalidate every cached output of this kind
    code:          modules whose source is part of the code version (default: run's module)
    resources:     default resources; a spec may override them per task
    timeout_s:     an attempt running longer is killed and counts as failed
    fresh_process: run each attempt in a new process (heavy, stateful libraries such as torch)
    metrics:       metric names the kind reports (what an HPO objective may name)
    """

    name: str
    service: str
    params: type[SpecModel]
    run: str
    inputs: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = ()
    partial_inputs: bool = False
    version: str = "1"
    code: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources)
    timeout_s: float = 3600.0
    fresh_process: bool = False
    metrics: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if self.service not in SERVICES:
            raise ValueError(f"kind {self.name}: unknown service {self.service!r}")
        if ":" not in self.run:
            raise ValueError(f"kind {self.name}: run must be 'module:function'")

    @property
    def code_version(self) -> str:
        modules = self.code or (self.run.split(":", 1)[0],)
        return code_version(tuple(modules), self.version)

    def load(self) -> Callable[[TaskContext], Any]:
        module, _, attr = self.run.partition(":")
        return getattr(importlib.import_module(module), attr)

    def validate_params(self, params: Mapping[str, Any] | None, *, path: str = "", source: str = "") -> SpecModel:
        from ehrlab.core.config import validate

        try:
            return validate(self.params, dict(params or {}))
        except SpecError as exc:
            raise SpecError(exc.message, path=".".join(p for p in (path, exc.path) if p),
                            source=source or exc.source) from None


@cache
def _load() -> tuple[dict[str, TaskKind], dict[str, str]]:
    kinds: dict[str, TaskKind] = {}
    broken: dict[str, str] = {}
    for ep in entry_points(group="ehrlab.kinds"):
        try:
            declared = ep.load()
        except Exception as exc:  # one broken plugin must not take every other kind down
            broken[ep.value] = f"{type(exc).__name__}: {exc}"
            log.error("task kinds from %s failed to load: %s", ep.value, broken[ep.value])
            continue
        for kind in declared:
            if kind.name in kinds and kinds[kind.name] != kind:
                raise RuntimeError(f"task kind {kind.name!r} is registered twice ({ep.value})")
            kinds[kind.name] = kind
    return kinds, broken


def registry() -> dict[str, TaskKind]:
    """Every kind registered by installed ehrlab libraries (and user plugins)."""
    return _load()[0]


def get_kind(name: str, *, path: str = "kind", source: str = "") -> TaskKind:
    kinds, broken = _load()
    if name in kinds:
        return kinds[name]
    close = difflib.get_close_matches(name, kinds, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if broken:
        hint += f" (plugins that failed to load: {'; '.join(f'{k}: {v}' for k, v in broken.items())})"
    raise SpecError(f"unknown task kind {name!r}{hint}", path=path, source=source)
