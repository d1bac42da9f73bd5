"""Manifests: what makes a directory of outputs a verified, content-addressed artifact.

An artifact is complete when its `manifest.json` exists and every file it lists exists with the
recorded size. The manifest is written last (and removed first on a forced rewrite), so a crash
half-way leaves no manifest and the next run sees a miss, not a corrupt hit. Readers that download a
file check its sha256 against the manifest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ehrlab.core.artifacts import ArtifactStore
from ehrlab.core.errors import NotFoundError, SpecError
from ehrlab.core.hashing import canonical_json, hash_value, sha256_file

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def artifact_prefix(dataset: str, kind: str, key: str) -> str:
    for label, value in (("dataset", dataset), ("kind", kind), ("key", key)):
        if not _SAFE.match(value):
            raise SpecError(f"{value!r} is not a valid {label} name (letters, digits, '.', '_', '-')",
                            path=label)
    return f"artifacts/{dataset}/{kind}/{key}"


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass
class Manifest:
    files: list[FileEntry]
    dataset: str = ""
    kind: str = ""
    key: str = ""
    created: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """Content hash: the files (paths, sizes, hashes) and nothing else."""
        return hash_value([asdict(f) for f in self.files])

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> str:
        body = asdict(self)
        body["digest"] = self.digest
        return canonical_json(body)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        body = json.loads(text)
        body.pop("digest", None)
        body["files"] = [FileEntry(**f) for f in body["files"]]
        return cls(**body)

    def has(self, path: str) -> bool:
        return any(f.path == path for f in self.files)


def _walk(directory: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath, name)
            yield full.relative_to(directory).as_posix(), full


def publish(store: ArtifactStore, prefix: str, directory: Path, *, dataset: str = "", kind: str = "",
            key: str = "", meta: dict[str, Any] | None = None, move: bool = True) -> Manifest:
    """Stores every file under `directory` at `prefix/…`, then the manifest; returns the manifest."""
    store.delete(f"{prefix}/{MANIFEST}")
    entries = []
    for rel, full in _walk(directory):
        if rel == MANIFEST:
            raise SpecError(f"a task may not write its own {MANIFEST}", path="outputs")
        entries.append(FileEntry(rel, full.stat().st_size, sha256_file(full)))
        store.put_file(f"{prefix}/{rel}", full, move=move)
    manifest = Manifest(entries, dataset=dataset, kind=kind, key=key,
                        created=datetime.now(UTC).isoformat(timespec="milliseconds"), meta=meta or {})
    store.put_bytes(f"{prefix}/{MANIFEST}", manifest.to_json().encode())
    return manifest


def load_complete(store: ArtifactStore, prefix: str) -> Manifest | None:
    """The manifest at `prefix` if it and every blob it lists exist with the right size; else None."""
    try:
        manifest = Manifest.from_json(store.get_bytes(f"{prefix}/{MANIFEST}"))
    except NotFoundError:
        return None
    except (ValueError, TypeError, KeyError):
        return None  # an unreadable manifest is a miss: the task runs again and rewrites it
    for entry in manifest.files:
        if store.size(f"{prefix}/{entry.path}") != entry.size:
            return None
    return manifest


def load_many(store: ArtifactStore, prefixes: list[str], *, threads: int = 16) -> list[Manifest | None]:
    """load_complete for many prefixes; remote stores are asked in parallel."""
    if len(prefixes) < 4 or store.local_path("") is not None:
        return [load_complete(store, p) for p in prefixes]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda p: load_complete(store, p), prefixes))


class IntegrityError(Exception):
    pass


def materialize(store: ArtifactStore, prefix: str, manifest: Manifest, dest: Path | None = None,
                *, verify: bool = True) -> Path:
    """A local directory holding the artifact's files.

    A local store is read in place (no copy). A remote store's files are downloaded into `dest` and
    each checked against the manifest's sha256.
    """
    in_place = store.local_path(prefix)
    if in_place is not None:
        return in_place
    if dest is None:
        dest = Path(tempfile.mkdtemp(prefix="ehrlab-input-"))
    for entry in manifest.files:
        target = dest / entry.path
        store.get_file(f"{prefix}/{entry.path}", target)
        if verify and sha256_file(target) != entry.sha256:
            shutil.rmtree(dest, ignore_errors=True)
            raise IntegrityError(f"{prefix}/{entry.path}: content does not match its manifest")
    return dest


def read_results(store: ArtifactStore, prefix: str, manifest: Manifest) -> list[dict[str, Any]]:
    """The result rows a task emitted (results.jsonl in its outputs), in order."""
    if not manifest.has(RESULTS):
        return []
    text = store.get_bytes(f"{prefix}/{RESULTS}").decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]
