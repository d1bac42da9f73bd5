"""Experiment specs: YAML layers deep-merged base -> dataset -> experiment, then validated.

The merge remembers which layer each key came from, so a validation error names the file and the
key path that holds the bad value (`experiment.yaml: steps.train.params.lr: ...`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ehrlab.core.errors import SpecError

KeyPath = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it: ~10x faster


class SpecModel(BaseModel):
    """Base of every spec and parameter model: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


@dataclass(frozen=True)
class Layer:
    """One spec document and the name to blame for its values."""

    source: str
    content: Mapping[str, Any]


@dataclass
class MergedSpec:
    data: dict[str, Any]
    provenance: dict[KeyPath, str] = field(default_factory=dict)

    def source_of(self, path: KeyPath) -> str:
        """The layer that set `path`, or the nearest enclosing key that a layer set."""
        for end in range(len(path), -1, -1):
            source = self.provenance.get(tuple(path[:end]))
            if source:
                return source
        return ""


def load_layer(path: str | Path) -> Layer:
    """Reads one YAML file; syntax errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError("file not found", source=str(path)) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", source=str(path)) from None
    return parse_layer(text, str(path))


def parse_layer(text: str, source: str) -> Layer:
    try:
        content = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"malformed YAML: {problem}", path=where, source=source) from None
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise SpecError(f"a spec must be a mapping of keys, not {type(content).__name__}", source=source)
    return Layer(source, content)


def merge_layers(layers: Iterable[Layer]) -> MergedSpec:
    """Deep-merges mappings in order (later wins); lists and scalars are replaced whole."""
    merged = MergedSpec({})
    for layer in layers:
        _merge_into(merged.data, layer.content, (), layer.source, merged.provenance)
    return merged


def _merge_into(target: dict[str, Any], update: Mapping[str, Any], prefix: KeyPath, source: str,
                provenance: dict[KeyPath, str]) -> None:
    for key, value in update.items():
        if not isinstance(key, str):
            raise SpecError(f"keys must be strings, got {key!r}", path=format_path(prefix), source=source)
        path = (*prefix, key)
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            provenance.setdefault(path, source)
            _merge_into(target[key], value, path, source, provenance)
            continue
        target[key] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else copy.deepcopy(value)
        for stale in [p for p in provenance if p[: len(path)] == path]:
            del provenance[stale]
        _record(path, value, source, provenance)


def _record(path: KeyPath, value: Any, source: str, provenance: dict[KeyPath, str]) -> None:
    provenance[path] = source
    if isinstance(value, Mapping):
        for key, item in value.items():
            _record((*path, key), item, source, provenance)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _record((*path, index), item, source, provenance)


def format_path(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_path(text: str) -> KeyPath:
    """The inverse of format_path: 'steps.a.inputs[0]' -> ('steps', 'a', 'inputs', 0)."""
    parts: list[str | int] = []
    for piece in text.split("."):
        name, *indices = piece.split("[")
        if name:
            parts.append(name)
        parts.extend(int(i.rstrip("]")) for i in indices if i.rstrip("]").isdigit())
    return tuple(parts)


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}


def validate(model: type[M], spec: MergedSpec | Mapping[str, Any], *, source: str = "",
             at: KeyPath = ()) -> M:
    """Validates `spec` (or the part of it at `at`) against `model`, raising one SpecError.

    The error names the first problem with its file and key path and counts the others.
    """
    merged = spec if isinstance(spec, MergedSpec) else MergedSpec(dict(spec), {})
    data: Any = merged.data
    for part in at:
        data = data[part]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise spec_error(exc, merged, at=at, default_source=source) from None


def spec_error(exc: ValidationError, merged: MergedSpec | None = None, *, at: KeyPath = (),
               default_source: str = "") -> SpecError:
    problems = []
    for err in exc.errors(include_url=False):
        loc = (*at, *_clean_loc(err["loc"]))
        message = _MESSAGES.get(err["type"], err["msg"])
        if err["type"] not in _MESSAGES and err["type"] != "value_error" and "input" in err:
            shown = repr(err["input"])
            message = f"{message} (got {shown[:60]})"
        elif err["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        source = (merged.source_of(loc) if merged else "") or default_source
        problems.append(SpecError(message, path=format_path(loc), source=source))
    first = problems[0]
    if len(problems) > 1:
        others = ", ".join(p.path or "(top)" for p in problems[1:4])
        more = "…" if len(problems) > 4 else ""
        first = SpecError(f"{first.message} (and {len(problems) - 1} more: {others}{more})",
                          path=first.path, source=first.source)
    first.problems = problems  # type: ignore[attr-defined]
    return first


def _clean_loc(loc: tuple[Any, ...]) -> KeyPath:
    # pydantic adds union/tag members and function names to locations: keep only real keys
    cleaned: list[str | int] = []
    for part in loc:
        if isinstance(part, int) or (isinstance(part, str) and not part.startswith(("function-", "tagged-union["))
                                     and "[" not in part):
            cleaned.append(part)
    return tuple(cleaned)
