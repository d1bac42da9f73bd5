"""Launchers turn ready task attempts into running work and report how each attempt ended.

The engine owns all state: it records an attempt in PostgreSQL before calling `launch`, persists the
handle the launcher fills in, and after a restart hands the attempts it believes are running to
`adopt`. A launcher therefore keeps no state that matters beyond what it can find again (processes
by their attempt files, Kubernetes Jobs by their labels).
"""

from __future__ import annotations

import enum
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from ehrlab.core.kinds import Resources, TaskKind
from ehrlab.core.runner import TaskSpec


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"            # counts as an attempt; retried while attempts remain
    CONFIG_ERROR = "config"      # retrying cannot help: the task fails at once
    PRUNED = "pruned"            # stopped by an HPO pruner: final, not an error of the task
    DISRUPTED = "disrupted"      # preempted/evicted, or lost before it started: retried without using an attempt


@dataclass
class Attempt:
    attempt_id: str               # unique: "<task id>.<number>"
    task_id: str
    experiment_id: str
    number: int
    spec: TaskSpec
    kind: TaskKind
    resources: Resources
    timeout_s: float
    handle: dict[str, Any] = field(default_factory=dict)  # filled by the launcher, persisted by the engine


@dataclass
class AttemptResult:
    attempt_id: str
    outcome: Outcome
    message: str = ""
    exit_code: int | None = None


@dataclass
class Capacity:
    """Free room for new attempts; infinite where the cluster's scheduler does the queueing."""

    cpu: float = math.inf
    gpu: float = math.inf
    slots: float = math.inf

    def fits(self, resources: Resources) -> bool:
        return self.slots >= 1 and resources.cpu <= self.cpu + 1e-9 and resources.gpu <= self.gpu

    def take(self, resources: Resources) -> None:
        self.cpu -= resources.cpu
        self.gpu -= resources.gpu
        self.slots -= 1


class Launcher(ABC):
    """Runs attempts somewhere. Every method is called from the engine's single reconcile thread."""

    @abstractmethod
    def capacity(self) -> Capacity:
        """Room for new attempts now."""

    @abstractmethod
    def launch(self, attempts: list[Attempt]) -> None:
        """Starts the attempts (a batch: a launcher may group identical kinds) and fills their handles."""

    @abstractmethod
    def poll(self) -> list[AttemptResult]:
        """Attempts that ended since the last poll. Must not block."""

    @abstractmethod
    def adopt(self, attempts: list[Attempt]) -> None:
        """After a controller restart: re-attach to attempts believed running. Ones that cannot be
        found are reported by the next poll (DISRUPTED if they never started, FAILED if they died)."""

    @abstractmethod
    def cancel(self, attempt_ids: list[str], reason: str) -> None:
        """Stops the attempts; they are then reported FAILED with `reason` by poll."""

    def waiting(self) -> dict[str, str]:
        """Launched attempts that are not running yet, and why (unschedulable, queued, pulling an image)."""
        return {}

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Releases resources; running attempts are left to finish (the next controller adopts them)."""
