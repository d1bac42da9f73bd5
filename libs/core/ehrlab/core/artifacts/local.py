"""The artifact store on a local directory (embedded mode, tests, shared file systems)."""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

from ehrlab.core.artifacts import ArtifactStore
from ehrlab.core.errors import NotFoundError


class LocalStore(ArtifactStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self.uri = self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise ValueError(f"key escapes the store: {key!r}")
        return path

    def _temp_beside(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")

    def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        dest = self._path(key)
        temp = self._temp_beside(dest)
        if move:
            try:
                os.replace(path, temp)
            except OSError:  # another file system: fall back to a copy
                shutil.copyfile(path, temp)
        else:
            shutil.copyfile(path, temp)
        os.replace(temp, dest)

    def put_bytes(self, key: str, data: bytes) -> None:
        dest = self._path(key)
        temp = self._temp_beside(dest)
        temp.write_bytes(data)
        os.replace(temp, dest)

    def get_file(self, key: str, dest: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise NotFoundError(f"no artifact object {key!r} in {self.uri}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"no artifact object {key!r} in {self.uri}") from None

    def size(self, key: str) -> int | None:
        try:
            info = self._path(key).stat()
        except OSError:
            return None
        return None if stat.S_ISDIR(info.st_mode) else info.st_size

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            yield prefix, base.stat().st_size
            return
        if not base.is_dir():
            return
        found = []
        for dirpath, _, filenames in os.walk(base):
            for name in filenames:
                if name.startswith(".") and name.endswith(".tmp"):
                    continue
                full = Path(dirpath, name)
                found.append((full.relative_to(self.root).as_posix(), full.stat().st_size))
        yield from sorted(found)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    def delete_prefix(self, prefix: str) -> int:
        count = super().delete_prefix(prefix)
        base = self._path(prefix)
        if base.is_dir():
            shutil.rmtree(base, ignore_errors=True)
        return count

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def scratch_dir(self) -> Path:
        path = self.root / ".scratch"
        path.mkdir(parents=True, exist_ok=True)
        return path
