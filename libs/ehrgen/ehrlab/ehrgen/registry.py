"""Named generators: `publish_generator` points a name at a trained model; generation resolves names.

A name is a small JSON object in the artifact store, `registry/ehrgen/<name>.json`, holding the model
artifact's prefix and digest and the evaluation summary it was published with. Publishing again under
the same name moves the name to the new model.

A model reference is, in order: a local directory (a train_generator artifact or its model/ folder), a
published name, an artifact prefix (`artifacts/<dataset>/train_generator/<key>` or `<dataset>/<key>`),
or a bare task key (looked up among the store's train_generator artifacts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ehrlab.core.artifacts import ArtifactStore
from ehrlab.core.artifacts.manifest import MANIFEST, load_complete, materialize
from ehrlab.core.errors import NotFoundError, SpecError

PREFIX = "registry/ehrgen"
KIND = "train_generator"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def pointer_key(name: str) -> str:
    if not _NAME.match(name):
        raise SpecError(f"{name!r} is not a valid model name (letters, digits, '.', '_', '-')", path="model")
    return f"{PREFIX}/{name}.json"


def publish(store: ArtifactStore, name: str, pointer: dict[str, Any]) -> None:
    store.put_bytes(pointer_key(name), json.dumps(pointer, indent=1).encode())


def read_pointer(store: ArtifactStore, name: str) -> dict[str, Any] | None:
    try:
        return json.loads(store.get_bytes(pointer_key(name)))
    except NotFoundError:
        return None


def find_prefix(store: ArtifactStore, reference: str,
                lookup_key: Callable[[str], str | None] | None = None) -> tuple[str, dict[str, Any]]:
    """(artifact prefix, published pointer or {}) of a model reference that is not a local path."""
    if _NAME.match(reference):
        pointer = read_pointer(store, reference)
        if pointer is not None:
            return pointer["prefix"], pointer
    parts = reference.strip("/").split("/")
    if len(parts) == 4 and parts[0] == "artifacts":
        return reference.strip("/"), {}
    if len(parts) == 2:
        return f"artifacts/{parts[0]}/{KIND}/{parts[1]}", {}
    if len(parts) == 1 and _NAME.match(reference):
        prefix = lookup_key(reference) if lookup_key else None
        if prefix is None:
            prefix = next((key.rsplit("/", 1)[0] for key, _ in store.list("artifacts/")
                           if key.endswith(f"/{KIND}/{reference}/{MANIFEST}")), None)
        if prefix is not None:
            return prefix, {}
    raise NotFoundError(f"no generator model {reference!r} (not a directory, a published name, an artifact "
                        "prefix or a train_generator key)")


def resolve(reference: str, store: ArtifactStore | None, cache_dir: Path,
            lookup_key: Callable[[str], str | None] | None = None) -> tuple[Path, dict[str, Any]]:
    """A local directory holding the model, and its published pointer ({} if it was not found by name)."""
    if not reference:
        raise SpecError("a model is required (a path, a published name or an artifact key)", path="model")
    local = Path(reference).expanduser()
    if local.is_dir():
        return local, {}
    if store is None:
        raise NotFoundError(f"no generator model at {reference!r} (and no artifact store to look in)")
    prefix, pointer = find_prefix(store, reference, lookup_key)
    manifest = load_complete(store, prefix)
    if manifest is None:
        raise NotFoundError(f"generator model {reference!r}: artifact {prefix} is missing or incomplete")
    if pointer.get("digest") and pointer["digest"] != manifest.digest:
        raise NotFoundError(f"generator model {reference!r}: artifact {prefix} changed since it was published")
    return materialize(store, prefix, manifest, cache_dir / manifest.digest), pointer
