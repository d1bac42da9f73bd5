"""What a task implementation sees: its parameters, its inputs as local paths, and where to write.

A task kind's `run` function takes one TaskContext. It reads `ctx.inputs[name]`, writes files under
`ctx.output_dir` (they become the artifact), may emit result rows with `ctx.add_results`, report
metrics and progress, and keep checkpoints. It never deals with object stores or gRPC itself, so
libraries can run their task kinds in-process in tests (`run_local`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ehrlab.core.artifacts import ArtifactStore
from ehrlab.core.config import SpecModel
from ehrlab.core.kinds import Resources


class Reporter(Protocol):
    """Where a running task's metrics and progress go (the result-store, or memory in tests)."""

    def metrics(self, step: int, values: Mapping[str, float], labels: Mapping[str, str]) -> None: ...

    def progress(self, fraction: float, message: str) -> None: ...

    def intermediate(self, step: int, value: float) -> bool:
        """Reports an objective value mid-training; True means the trial should stop (pruned)."""
        ...

    def flush(self) -> None: ...


@dataclass
class MemoryReporter:
    """Keeps everything in lists: for running tasks without services (tests, notebooks)."""

    metric_points: list[tuple[int, dict[str, float], dict[str, str]]] = field(default_factory=list)
    progress_notes: list[tuple[float, str]] = field(default_factory=list)
    intermediates: list[tuple[int, float]] = field(default_factory=list)
    prune_after: int | None = None

    def metrics(self, step: int, values: Mapping[str, float], labels: Mapping[str, str]) -> None:
        self.metric_points.append((step, dict(values), dict(labels)))

    def progress(self, fraction: float, message: str) -> None:
        self.progress_notes.append((fraction, message))

    def intermediate(self, step: int, value: float) -> bool:
        self.intermediates.append((step, value))
        return self.prune_after is not None and len(self.intermediates) >= self.prune_after

    def flush(self) -> None:
        pass


class TrialPruned(Exception):
    """Raised by a task when the HPO pruner stops its trial; the runner records it as pruned, not failed."""


@dataclass
class TaskContext:
    task_id: str
    experiment_id: str
    kind: str
    key: str
    dataset: str
    attempt: int
    params: SpecModel
    inputs: dict[str, Path]
    output_dir: Path
    work_dir: Path
    reporter: Reporter
    store: ArtifactStore | None = None
    labels: dict[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("ehrlab.task"))
    _results: list[dict[str, Any]] = field(default_factory=list)
    _last_progress: float = 0.0

    @property
    def threads(self) -> int:
        """How many threads this attempt should use: its cpu allowance, not the machine's cores (a
        Kubernetes CPU limit, or other tasks sharing the machine, would be oversubscribed)."""
        return max(1, int(self.resources.cpu))

    def add_results(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Result rows: written to results.jsonl in the outputs and sent to the result-store."""
        for row in rows:
            json.dumps(row, allow_nan=True)  # fail here, in the task, if a row is not JSON
            self._results.append(dict(row))

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(self._results)

    def report_metrics(self, step: int, values: Mapping[str, float], **labels: str) -> None:
        self.reporter.metrics(step, {k: float(v) for k, v in values.items()}, labels)

    def progress(self, done: float, total: float | None = None, message: str = "") -> None:
        """Progress within the task (rate-limited to one report a second)."""
        fraction = done / total if total else done
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last_progress >= 1.0:
            self._last_progress = now
            self.reporter.progress(max(0.0, min(1.0, fraction)), message)

    def report_intermediate(self, step: int, value: float) -> None:
        """An objective value mid-training; raises TrialPruned when the study's pruner says stop."""
        if self.reporter.intermediate(step, float(value)):
            raise TrialPruned(f"pruned at step {step} (value {value:.6g})")

    # Checkpoints live beside the artifacts, keyed by the task key, so a retried attempt resumes.
    def _checkpoint_key(self, name: str) -> str:
        return f"checkpoints/{self.dataset}/{self.kind}/{self.key}/{name}"

    def save_checkpoint(self, path: Path, name: str = "last") -> None:
        if self.store is None:
            return
        self.store.put_file(self._checkpoint_key(name), Path(path))

    def load_checkpoint(self, name: str = "last") -> Path | None:
        """The checkpoint saved by an earlier attempt of this task, downloaded into work_dir; else None."""
        if self.store is None or self.store.size(self._checkpoint_key(name)) is None:
            return None
        dest = self.work_dir / "checkpoints" / name
        self.store.get_file(self._checkpoint_key(name), dest)
        return dest

    def clear_checkpoints(self) -> None:
        if self.store is not None:
            self.store.delete_prefix(f"checkpoints/{self.dataset}/{self.kind}/{self.key}")
