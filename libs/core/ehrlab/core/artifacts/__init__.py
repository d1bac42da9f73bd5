"""The artifact store: one small interface over a local directory or an S3 bucket.

Keys are '/'-separated paths below the store's root (`artifacts/{dataset}/{kind}/{key}/…`).
Backends stream files (nothing is read whole into memory) and write each object atomically:
a reader sees the old object or the new one, never a half-written one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse


class ArtifactStore(ABC):
    """Where artifacts live. `uri` identifies the store (file:///… or s3://bucket/prefix)."""

    uri: str

    @abstractmethod
    def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        """Stores the file at `path` under `key`; `move` lets a local store take the file instead of copying."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_file(self, key: str, dest: Path) -> None:
        """Writes the object to `dest`; raises NotFoundError if absent."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The whole object (for small objects such as manifests); raises NotFoundError if absent."""

    @abstractmethod
    def size(self, key: str) -> int | None:
        """The object's size in bytes, or None if it does not exist."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under `prefix`, in key order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Removes one object; absent objects are not an error."""

    def delete_prefix(self, prefix: str) -> int:
        keys = [key for key, _ in self.list(prefix)]
        for key in keys:
            self.delete(key)
        return len(keys)

    def local_path(self, key: str) -> Path | None:
        """A path to read the object in place, for stores on the local file system; else None."""
        return None

    def uri_for(self, key: str) -> str:
        return f"{self.uri.rstrip('/')}/{key}"

    def scratch_dir(self) -> Path | None:
        """A directory on the same file system as the store, so outputs can be moved in, not copied."""
        return None


def open_store(uri: str) -> ArtifactStore:
    """A store from its URI: a path or file:///path, or s3://bucket[/prefix]?endpoint=host:port&secure=false.

    S3 credentials come from the environment (EHRLAB_S3_ACCESS_KEY/EHRLAB_S3_SECRET_KEY, or the
    AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY pair), never from the URI, so URIs can be logged.
    """
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        from ehrlab.core.artifacts.local import LocalStore

        return LocalStore(Path(parsed.path if parsed.scheme else uri))
    if parsed.scheme == "s3":
        from ehrlab.core.artifacts.s3 import S3Store

        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return S3Store(bucket=parsed.netloc, prefix=parsed.path.strip("/"), **options)
    raise ValueError(f"unsupported artifact store URI {uri!r} (use a path, file:// or s3://)")
