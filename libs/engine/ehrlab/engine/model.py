"""The engine's in-memory picture of active experiments: rebuilt from PostgreSQL after any restart."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ehrlab.core.artifacts.manifest import artifact_prefix
from ehrlab.core.kinds import Resources
from ehrlab.v1 import common_pb2

# TaskState / ExperimentState values, as stored in the database and sent over gRPC.
PENDING = common_pb2.TASK_STATE_PENDING
READY = common_pb2.TASK_STATE_READY
RUNNING = common_pb2.TASK_STATE_RUNNING
SUCCEEDED = common_pb2.TASK_STATE_SUCCEEDED
CACHED = common_pb2.TASK_STATE_CACHED
FAILED = common_pb2.TASK_STATE_FAILED
SKIPPED = common_pb2.TASK_STATE_SKIPPED
CANCELLED = common_pb2.TASK_STATE_CANCELLED
DONE = frozenset({SUCCEEDED, CACHED})                     # outputs available
FINISHED = frozenset({SUCCEEDED, CACHED, FAILED, SKIPPED, CANCELLED})
TASK_STATE_NAMES = {v: common_pb2.TaskState.Name(v).removeprefix("TASK_STATE_").lower()
                    for v in common_pb2.TaskState.values() if v}

EXP_PENDING = common_pb2.EXPERIMENT_STATE_PENDING
EXP_RUNNING = common_pb2.EXPERIMENT_STATE_RUNNING
EXP_SUCCEEDED = common_pb2.EXPERIMENT_STATE_SUCCEEDED
EXP_FAILED = common_pb2.EXPERIMENT_STATE_FAILED
EXP_CANCELLED = common_pb2.EXPERIMENT_STATE_CANCELLED
EXP_FINISHED = frozenset({EXP_SUCCEEDED, EXP_FAILED, EXP_CANCELLED})
EXP_STATE_NAMES = {v: common_pb2.ExperimentState.Name(v).removeprefix("EXPERIMENT_STATE_").lower()
                   for v in common_pb2.ExperimentState.values() if v}


@dataclass(eq=False)
class TaskRecord:
    id: str
    experiment_id: str
    seq: int
    name: str
    kind: str
    key: str
    dataset: str
    service: str
    code_version: str
    params: dict[str, Any]
    inputs: dict[str, dict[str, str]]
    depends_on: list[str]
    resources: Resources
    timeout_s: float
    max_attempts: int
    labels: dict[str, str]
    forced: bool
    skip: bool
    state: int
    attempts: int = 0
    launches: int = 0
    not_before: datetime | None = None
    error: str = ""
    output_digest: str | None = None
    output_size: int | None = None
    results_done: bool = False
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    ready_since: float = 0.0                  # monotonic time it became ready (launch latency)
    attempt_id: str | None = None             # the open attempt, while running
    manifest: Any = None                      # outputs found at submit time, until forwarded (not stored)
    waiting: str = ""                         # the launcher's reason it is not running yet (not stored)

    @property
    def prefix(self) -> str:
        return artifact_prefix(self.dataset, self.kind, self.key)


@dataclass(eq=False)
class ExperimentRecord:
    id: str
    name: str
    request_id: str
    planner: str
    spec: dict[str, Any]
    options: dict[str, Any]
    labels: dict[str, str]
    state: int
    cancel_requested: bool = False
    error: str = ""
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    tasks: dict[str, TaskRecord] = field(default_factory=dict)         # by name
    users: dict[str, list[str]] = field(default_factory=dict)          # name -> names that depend on it
    counts: Counter[int] = field(default_factory=Counter)
    running: int = 0
    pending_results: int = 0

    def index(self) -> None:
        self.users = {name: [] for name in self.tasks}
        for task in self.tasks.values():
            for dep in task.depends_on:
                self.users[dep].append(task.name)
        self.counts = Counter(t.state for t in self.tasks.values())
        self.running = self.counts[RUNNING]
        self.pending_results = sum(1 for t in self.tasks.values() if t.state in DONE and not t.results_done)

    @property
    def progress(self) -> float:
        total = len(self.tasks)
        return sum(self.counts[s] for s in FINISHED) / total if total else 0.0

    def counts_dict(self) -> dict[str, int]:
        return {TASK_STATE_NAMES[s]: n for s, n in self.counts.items() if n}
