"""Runs one task attempt: the body of `ehrlab task run <id>` on every launcher.

Materialize inputs -> validate params -> call the kind's function -> publish outputs with their
manifest. The exit code tells the launcher what happened: 0 done, 1 failed (worth retrying),
2 a configuration error (retrying cannot help), 3 pruned by an HPO study.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ehrlab.core.artifacts import ArtifactStore, open_store
from ehrlab.core.artifacts.manifest import RESULTS, Manifest, artifact_prefix, load_complete, materialize, publish
from ehrlab.core.context import MemoryReporter, Reporter, TaskContext, TrialPruned
from ehrlab.core.errors import SpecError
from ehrlab.core.kinds import Resources, get_kind

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_PRUNED = 0, 1, 2, 3
log = logging.getLogger("ehrlab.runner")


@dataclass
class InputRef:
    """An upstream task's outputs (dataset/kind/key in the task's store) or an external source URI."""

    uri: str = ""
    digest: str = ""
    dataset: str = ""
    kind: str = ""
    key: str = ""

    @property
    def is_artifact(self) -> bool:
        return bool(self.key)


@dataclass
class TaskSpec:
    """Everything needed to run one attempt, independent of where it came from."""

    task_id: str
    kind: str
    key: str
    dataset: str
    params: dict[str, Any]
    inputs: dict[str, InputRef] = field(default_factory=dict)
    experiment_id: str = ""
    name: str = ""
    attempt: int = 1
    store_uri: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)  # what the launcher gave the attempt

    @property
    def output_prefix(self) -> str:
        return artifact_prefix(self.dataset, self.kind, self.key)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TaskSpec:
        body = json.loads(text)
        body["inputs"] = {k: InputRef(**v) for k, v in body["inputs"].items()}
        return cls(**body)


class TaskFailure(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _resolve_inputs(spec: TaskSpec, store: ArtifactStore, scratch: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for name, ref in spec.inputs.items():
        if ref.is_artifact:
            prefix = artifact_prefix(ref.dataset, ref.kind, ref.key)
            manifest = load_complete(store, prefix)
            if manifest is None:
                raise TaskFailure(f"input {name!r}: artifact {prefix} is missing or incomplete", EXIT_FAILED)
            if ref.digest and manifest.digest != ref.digest:
                raise TaskFailure(f"input {name!r}: artifact {prefix} changed since planning", EXIT_FAILED)
            paths[name] = materialize(store, prefix, manifest, scratch / "inputs" / name)
        else:
            paths[name] = _fetch_source(name, ref.uri, scratch)
    return paths


def _fetch_source(name: str, uri: str, scratch: Path) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else uri)
        if not path.exists():
            raise TaskFailure(f"input {name!r}: {path} does not exist", EXIT_CONFIG)
        return path
    if parsed.scheme == "s3":
        source = open_store(f"s3://{parsed.netloc}?{parsed.query}" if parsed.query else f"s3://{parsed.netloc}")
        prefix = parsed.path.strip("/")
        dest = scratch / "sources" / name
        objects = list(source.list(prefix))
        if not objects:
            raise TaskFailure(f"input {name!r}: nothing at {uri}", EXIT_CONFIG)
        for key, _ in objects:
            rel = key[len(prefix):].lstrip("/") or Path(key).name
            source.get_file(key, dest / rel)
        return dest
    raise TaskFailure(f"input {name!r}: unsupported URI {uri!r}", EXIT_CONFIG)


def _empty_dir(path: Path) -> Path:
    """`path` as an empty directory, reusing it when it exists (creating and removing directories is slow
    on some file systems, and a worker runs thousands of attempts)."""
    if path.is_dir():
        for entry in os.scandir(path):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
    else:
        path.mkdir(parents=True)
    return path


def execute(spec: TaskSpec, *, store: ArtifactStore | None = None, reporter: Reporter | None = None,
            force: bool = False, scratch: Path | None = None) -> Manifest:
    """Runs the attempt and publishes its outputs; raises TaskFailure with the exit code to use.

    Unless forced, an artifact already complete for this key is kept (a concurrent or earlier attempt
    finished it): the attempt then does nothing, which makes retries and duplicates harmless.
    `scratch` is a directory the caller owns and reuses across attempts; by default a temporary one
    beside the store is made and removed.
    """
    try:
        kind = get_kind(spec.kind)
        params = kind.validate_params(spec.params, path="params")
    except SpecError as exc:
        raise TaskFailure(str(exc), EXIT_CONFIG) from None
    store = store or open_store(spec.store_uri)
    if not force:
        done = load_complete(store, spec.output_prefix)
        if done is not None:
            return done
    reporter = reporter or MemoryReporter()
    owned = scratch is None
    if owned:
        scratch = Path(tempfile.mkdtemp(prefix=f"{spec.kind}-", dir=store.scratch_dir()))
    try:
        output_dir = _empty_dir(scratch / "outputs")
        work_dir = _empty_dir(scratch / "work")
        ctx = TaskContext(
            task_id=spec.task_id, experiment_id=spec.experiment_id, kind=spec.kind, key=spec.key,
            dataset=spec.dataset, attempt=spec.attempt, params=params,
            inputs=_resolve_inputs(spec, store, scratch), output_dir=output_dir, work_dir=work_dir,
            reporter=reporter, store=store, labels=dict(spec.labels),
            resources=Resources.model_validate(spec.resources) if spec.resources else kind.resources,
        )
        try:
            kind.load()(ctx)
        except TrialPruned as exc:
            raise TaskFailure(str(exc), EXIT_PRUNED) from None
        except SpecError as exc:
            raise TaskFailure(str(exc), EXIT_CONFIG) from None
        finally:
            reporter.flush()
        if ctx.results:
            with open(output_dir / RESULTS, "w") as handle:
                for row in ctx.results:
                    handle.write(json.dumps(row, allow_nan=True, default=str) + "\n")
        return publish(store, spec.output_prefix, output_dir, dataset=spec.dataset, kind=spec.kind,
                       key=spec.key, meta={"task_id": spec.task_id, "experiment_id": spec.experiment_id,
                                           "attempt": spec.attempt, "params": spec.params})
    finally:
        if owned:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            for name in ("work", "inputs", "sources"):
                if (scratch / name).exists() and any(os.scandir(scratch / name)):
                    shutil.rmtree(scratch / name, ignore_errors=True)


def run_attempt(spec: TaskSpec, **kwargs: Any) -> tuple[int, str]:
    """execute() that never raises: (exit code, one-line message) for launchers and the CLI."""
    try:
        manifest = execute(spec, **kwargs)
    except TaskFailure as exc:
        return exc.exit_code, str(exc)
    except MemoryError:
        return EXIT_FAILED, "out of memory"
    except Exception as exc:  # the task's own bug: keep the last frames for the error record
        frames = traceback.format_exception(exc, limit=-3)
        log.error("task %s failed:\n%s", spec.task_id, "".join(frames))
        return EXIT_FAILED, f"{type(exc).__name__}: {exc}"[:2000]
    return EXIT_OK, manifest.digest


def write_termination_message(message: str) -> None:
    """Kubernetes shows /dev/termination-log in the pod status; locally the launcher reads the same file."""
    path = os.environ.get("EHRLAB_TERMINATION_LOG")
    if path:
        try:
            Path(path).write_text(message[:4000])
        except OSError:
            pass


def run_local(kind: str, params: dict[str, Any], inputs: dict[str, Path] | None = None, *,
              store: ArtifactStore | None = None, dataset: str = "local",
              reporter: Reporter | None = None) -> tuple[Path, Manifest]:
    """Runs a task kind in-process on local paths, without any service: for tests and notebooks.

    Returns the directory holding the published outputs and their manifest.
    """
    from ehrlab.core.artifacts.local import LocalStore
    from ehrlab.core.hashing import hash_value

    store = store or LocalStore(Path(tempfile.mkdtemp(prefix="ehrlab-local-")))
    key = hash_value({"kind": kind, "code_version": get_kind(kind).code_version, "params": params,
                      "inputs": {k: str(v) for k, v in (inputs or {}).items()}})[:32]  # a code change: a new place
    spec = TaskSpec(task_id=f"local-{key[:8]}", kind=kind, key=key, dataset=dataset, params=params,
                    inputs={name: InputRef(uri=str(path)) for name, path in (inputs or {}).items()})
    manifest = execute(spec, store=store, reporter=reporter, force=True)
    path = store.local_path(spec.output_prefix)
    if path is None:
        raise RuntimeError("run_local needs a local store")
    return path, manifest


def record_outcome(path: Path, exit_code: int, message: str) -> None:
    """Writes an attempt's outcome file atomically: how a launcher learns the outcome of an attempt
    it did not start itself (after a controller restart)."""
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps({"exit_code": exit_code, "message": message}))
    os.replace(temp, path)


def read_outcome(path: Path) -> tuple[int, str] | None:
    try:
        body = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return int(body["exit_code"]), str(body["message"])
