"""Canonical JSON and content hashes: the basis of task keys and artifact digests."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal values always hash alike.

    Floats that are whole numbers are written as integers: a spec that says `3` and one that says
    `3.0` (protobuf Struct turns every number into a double) are the same spec.
    """
    return json.dumps(_normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _normalize(value: Any) -> Any:
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, dict):
        return {str(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalize(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def hash_value(value: Any) -> str:
    """sha256 of the canonical JSON of `value`."""
    return sha256_text(canonical_json(value))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def module_source_files(module: str) -> list[Path]:
    """The source files of a module, or of every module in a package, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"no source for module {module!r}")
    origin = Path(spec.origin)
    if spec.submodule_search_locations:  # a package: all of its .py files
        return sorted(p for loc in spec.submodule_search_locations for p in Path(loc).rglob("*.py"))
    return [origin]


@cache
def code_version(modules: tuple[str, ...], version: str = "") -> str:
    """A short hash of the source of `modules` plus a hand-bumped `version`.

    Any edit to those files changes task keys of the kinds they implement, so stale outputs are never
    reused after a code change. Cached per process: the source does not change under a running service.
    """
    digest = hashlib.sha256(version.encode())
    for module in modules:
        for path in module_source_files(module):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def combine(parts: Iterable[str]) -> str:
    return sha256_text("\n".join(parts))
