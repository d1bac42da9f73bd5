"""The model registry: model directories in the artifact store at `models/{name}/{version}/`.

Each version is a verified artifact (files + manifest.json, as task outputs are) and never changes
once published: publishing different files under an existing version is a ConflictError, the same
files again is a no-op. `models/{name}/LATEST` names the newest version. A task refers to a model as
`registry:NAME` (the latest version) or `registry:NAME@VERSION`; anything else is a local directory.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ehrlab.core.artifacts import ArtifactStore
from ehrlab.core.artifacts.manifest import MANIFEST, Manifest, load_complete, materialize, publish
from ehrlab.core.context import TaskContext
from ehrlab.core.errors import ConflictError, NotFoundError, SpecError
from ehrlab.core.hashing import sha256_file

PREFIX = "models"
SCHEME = "registry:"


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    digest: str
    size: int
    created: str


def _prefix(name: str, version: str) -> str:
    return f"{PREFIX}/{name}/{version}"


def _same_files(manifest: Manifest, directory: Path) -> bool:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    ours = [(p.relative_to(directory).as_posix(), p.stat().st_size, sha256_file(p)) for p in files]
    return sorted((f.path, f.size, f.sha256) for f in manifest.files) == ours


def publish_model(store: ArtifactStore, name: str, directory: Path, *, version: str = "1") -> ModelVersion:
    """Copies `directory` into the registry as name@version (idempotent for the same files)."""
    directory = Path(directory)
    if not directory.is_dir() or not any(directory.iterdir()):
        raise SpecError(f"{directory} is not a directory with a model in it", path="model")
    prefix = _prefix(name, version)
    existing = load_complete(store, prefix)
    if existing is not None:
        if not _same_files(existing, directory):
            raise ConflictError(f"model {name}@{version} already exists with other files; publish a new version")
    else:
        existing = publish(store, prefix, directory, kind="model", key=version, meta={"name": name}, move=False)
    store.put_bytes(f"{PREFIX}/{name}/LATEST", version.encode())
    return ModelVersion(name, version, existing.digest, existing.size, existing.created)


def list_models(store: ArtifactStore) -> list[ModelVersion]:
    versions = []
    for key, _ in store.list(f"{PREFIX}/"):
        parts = key.split("/")
        if len(parts) == 4 and parts[3] == MANIFEST:
            manifest = Manifest.from_json(store.get_bytes(key))
            versions.append(ModelVersion(parts[1], parts[2], manifest.digest, manifest.size, manifest.created))
    return versions


def parse_reference(reference: str) -> tuple[str, str | None] | None:
    """(name, version or None) for `registry:NAME[@VERSION]`; None for a local path."""
    if not reference.startswith(SCHEME):
        return None
    name, _, version = reference[len(SCHEME):].partition("@")
    if not name:
        raise SpecError(f"{reference!r}: a registry reference is registry:NAME or registry:NAME@VERSION",
                        path="encoder")
    return name, version or None


def resolve_model(reference: str, store: ArtifactStore | None, cache_dir: Path) -> Path:
    """A local directory holding the model `reference` names (downloaded and verified if remote)."""
    parsed = parse_reference(reference)
    if parsed is None:
        path = Path(reference)
        if not (path / "config.json").is_file():
            raise SpecError(f"{reference} is not a model directory (no config.json)", path="encoder")
        return path
    name, version = parsed
    if store is None:
        raise SpecError(f"{reference}: no artifact store to read the model registry from", path="encoder")
    if version is None:
        try:
            version = store.get_bytes(f"{PREFIX}/{name}/LATEST").decode().strip()
        except NotFoundError:
            raise SpecError(f"no model named {name!r} in the registry ({store.uri})", path="encoder") from None
    prefix = _prefix(name, version)
    manifest = load_complete(store, prefix)
    if manifest is None:
        raise SpecError(f"model {name}@{version} is not in the registry ({store.uri})", path="encoder")
    in_place = store.local_path(prefix)
    if in_place is not None:  # a store on this file system: read the files where they are
        return in_place
    target = cache_dir / name / version
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    materialize(store, prefix, manifest, scratch)
    try:
        scratch.rename(target)
    except OSError:  # another task fetched the same version meanwhile
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def publish_task(ctx: TaskContext) -> None:
    """The `publish_model` task: its `model` input into the registry of the task's own store."""
    if ctx.store is None:
        raise SpecError("publish_model needs an artifact store", path="store")
    published = publish_model(ctx.store, ctx.params.name, ctx.inputs["model"], version=ctx.params.version)
    (ctx.output_dir / "model.json").write_text(json.dumps(published.__dict__, indent=2))
    ctx.add_results([{"model": published.name, "version": published.version, "digest": published.digest,
                      "size_bytes": published.size}])
