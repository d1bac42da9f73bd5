"""The ArtifactStore contract, checked on both backends (a local directory and a real S3 server)."""

from __future__ import annotations

import gc
import hashlib
import os
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from ehrlab.core.artifacts import ArtifactStore
from ehrlab.core.artifacts.manifest import MANIFEST, artifact_prefix, load_complete, load_many, materialize, publish
from ehrlab.core.errors import NotFoundError, SpecError
from tests.artifacts.conftest import PARALLEL_UPLOADS, PART_SIZE


def write_random(path: Path, size: int) -> str:
    """Writes `size` random bytes to `path` in 1 MiB pieces; returns their sha256."""
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for offset in range(0, size, 1 << 20):
            piece = os.urandom(min(1 << 20, size - offset))
            digest.update(piece)
            out.write(piece)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while piece := source.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()


def peak_growth(action: Callable[[], object]) -> int:
    """How far Python's allocated memory rose above its level before `action` (tracemalloc running)."""
    gc.collect()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    action()
    return tracemalloc.get_traced_memory()[1] - before


def test_bytes_round_trip_and_size(store: ArtifactStore) -> None:
    store.put_bytes("a/b/c.json", b'{"x": 1}')
    assert store.get_bytes("a/b/c.json") == b'{"x": 1}'
    assert store.size("a/b/c.json") == 8
    store.put_bytes("a/empty", b"")
    assert store.get_bytes("a/empty") == b""
    assert store.size("a/empty") == 0


def test_files_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "in" / "data.bin"
    digest = write_random(source, 300_000)
    store.put_file("runs/1/data.bin", source)
    dest = tmp_path / "out" / "deeper" / "data.bin"  # parents are created
    store.get_file("runs/1/data.bin", dest)
    assert file_sha256(dest) == digest
    assert store.size("runs/1/data.bin") == 300_000
    assert not [p for p in dest.parent.iterdir() if p != dest], "no temporary files left beside the download"


def test_put_file_with_move_stores_the_content(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "moved.txt"
    source.write_text("content")
    store.put_file("m/moved.txt", source, move=True)
    assert store.get_bytes("m/moved.txt") == b"content"


def test_missing_objects(store: ArtifactStore, tmp_path: Path) -> None:
    assert store.size("no/such/key") is None
    with pytest.raises(NotFoundError, match="no/such/key"):
        store.get_bytes("no/such/key")
    dest = tmp_path / "never.bin"
    with pytest.raises(NotFoundError, match="no/such/key"):
        store.get_file("no/such/key", dest)
    assert not dest.exists()
    assert list(store.list("no/such")) == []
    store.delete("no/such/key")  # not an error
    assert store.delete_prefix("no/such") == 0


def test_a_directory_is_not_an_object(store: ArtifactStore) -> None:
    store.put_bytes("dir/file", b"x")
    assert store.size("dir") is None
    with pytest.raises(NotFoundError):
        store.get_bytes("dir")


def test_list_is_in_key_order_and_prefixes_are_paths(store: ArtifactStore) -> None:
    objects = {"d/x/2.txt": b"22", "d/x/10.txt": b"1010", "d/x/sub/a": b"a", "d/xy/1": b"1", "e/1": b"e"}
    for key in reversed(sorted(objects)):
        store.put_bytes(key, objects[key])
    under_x = [("d/x/10.txt", 4), ("d/x/2.txt", 2), ("d/x/sub/a", 1)]
    assert list(store.list("d/x")) == under_x  # not d/xy/1: a prefix is a directory, not a string prefix
    assert list(store.list("d/x/")) == under_x
    assert list(store.list("d/x/2.txt")) == [("d/x/2.txt", 2)]  # an object's own key lists itself
    assert list(store.list("")) == sorted((k, len(v)) for k, v in objects.items())
    assert list(store.list("d/x/su")) == []


def test_delete_and_delete_prefix(store: ArtifactStore) -> None:
    for key in ("p/q/1", "p/q/2", "p/q/r/3", "p/qq/4", "p/5"):
        store.put_bytes(key, b"data")
    store.delete("p/5")
    assert store.size("p/5") is None
    assert store.delete_prefix("p/q") == 3
    assert list(store.list("p")) == [("p/qq/4", 4)]


def test_overwrite_is_atomic_for_readers(store: ArtifactStore, tmp_path: Path) -> None:
    """A reader racing a writer sees one whole version or the other, never a mix or a torn object."""
    old = b"a" * 300_000
    new_file = tmp_path / "new.bin"
    new = os.urandom(PART_SIZE + 700_000)  # goes up in two parts on S3
    new_file.write_bytes(new)
    store.put_bytes("race/obj", old)
    done = threading.Event()
    seen: list[str] = []

    def version(data: bytes) -> str:
        return "old" if data == old else "new" if data == new else f"torn ({len(data)} bytes)"

    def read() -> None:
        while not done.is_set():
            seen.append(version(store.get_bytes("race/obj")))
            store.get_file("race/obj", tmp_path / "read" / "obj")
            seen.append(version((tmp_path / "read" / "obj").read_bytes()))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(8):
            store.put_file("race/obj", new_file)
            store.put_bytes("race/obj", old)
    finally:
        done.set()
        reader.join()
    assert seen and set(seen) <= {"old", "new"}


def test_keys_may_not_escape_the_store(store: ArtifactStore) -> None:
    with pytest.raises(ValueError, match="key"):
        store.put_bytes("../outside", b"x")


def test_large_file_streams_with_bounded_memory(store: ArtifactStore, tmp_path: Path) -> None:
    """An 80 MB file goes up (in parts, on S3) and comes back without ever being held whole in memory."""
    size = 80 << 20
    source = tmp_path / "large.bin"
    digest = write_random(source, size)
    # the SDK holds the parts in flight or just sent, one queued, the one being read and the one before
    bound = (2 * PARALLEL_UPLOADS + 3) * PART_SIZE
    assert bound < size // 2
    tracemalloc.start()
    try:
        upload_peak = peak_growth(lambda: store.put_file("big/large.bin", source))
        download_peak = peak_growth(lambda: store.get_file("big/large.bin", tmp_path / "back.bin"))
    finally:
        tracemalloc.stop()
    assert upload_peak < bound, f"upload peaked at {upload_peak / 2**20:.1f} MiB of Python memory"
    assert download_peak < 4 << 20, f"download peaked at {download_peak / 2**20:.1f} MiB"
    assert store.size("big/large.bin") == size
    assert file_sha256(tmp_path / "back.bin") == digest
    etags = getattr(store, "etags", None)
    if etags is not None:  # S3: an ETag "md5-N" says the object was assembled from N parts
        assert etags("big/large.bin")["big/large.bin"].endswith(f"-{-(-size // PART_SIZE)}")


def make_outputs(directory: Path) -> dict[str, bytes]:
    files = {"model.bin": os.urandom(70_000), "metrics.json": b'{"auc": 0.8}', "plots/roc.csv": b"fpr,tpr\n0,0\n1,1\n",
             "results.jsonl": b'{"a": 1}\n{"a": 2}\n'}
    for rel, data in files.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_bytes(data)
    return files


def test_manifest_publish_load_and_materialize(store: ArtifactStore, tmp_path: Path) -> None:
    files = make_outputs(tmp_path / "outputs")
    prefix = artifact_prefix("demo", "train", "k1")
    published = publish(store, prefix, tmp_path / "outputs", dataset="demo", kind="train", key="k1")
    assert sorted(f.path for f in published.files) == sorted(files)
    assert store.size(f"{prefix}/{MANIFEST}") is not None

    loaded = load_complete(store, prefix)
    assert loaded is not None
    assert loaded.digest == published.digest and loaded.kind == "train"
    local = materialize(store, prefix, loaded, tmp_path / "inputs")
    for rel, data in files.items():
        assert (local / rel).read_bytes() == data
    assert load_many(store, [prefix, artifact_prefix("demo", "train", "nope")] * 3) == [loaded, None] * 3


def test_an_artifact_whose_blob_is_missing_or_resized_is_a_miss(store: ArtifactStore, tmp_path: Path) -> None:
    make_outputs(tmp_path / "outputs")
    prefix = artifact_prefix("demo", "train", "k2")
    publish(store, prefix, tmp_path / "outputs", move=False)
    assert load_complete(store, prefix) is not None
    store.put_bytes(f"{prefix}/metrics.json", b'{"auc": 0.81}')  # one byte longer than recorded
    assert load_complete(store, prefix) is None
    store.put_bytes(f"{prefix}/metrics.json", b'{"auc": 0.8}')
    assert load_complete(store, prefix) is not None
    store.delete(f"{prefix}/plots/roc.csv")
    assert load_complete(store, prefix) is None


def test_an_unreadable_manifest_is_a_miss(store: ArtifactStore, tmp_path: Path) -> None:
    make_outputs(tmp_path / "outputs")
    prefix = artifact_prefix("demo", "train", "k3")
    publish(store, prefix, tmp_path / "outputs")
    store.put_bytes(f"{prefix}/{MANIFEST}", b"{not json")
    assert load_complete(store, prefix) is None
    assert load_complete(store, artifact_prefix("demo", "train", "never-written")) is None


def test_publish_rejects_a_task_written_manifest_before_writing_it(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / MANIFEST).write_text("{}")
    prefix = artifact_prefix("demo", "train", "k4")
    with pytest.raises(SpecError, match=MANIFEST):
        publish(store, prefix, tmp_path / "outputs")
    assert load_complete(store, prefix) is None
