"""The task kinds of note-grading experiments (run in the grader's image).

`generate_note` writes one note (case × model pair × replication); `grade_note` grades one note
against one rubric (× grade replication). Both call the model backend in-process and record the
outcome in the GradingStore, which makes them resumable twice over: a finished task's key is a cache
hit, and a task whose note or grade the store already holds returns it without calling the model.

Both are I/O-bound (they wait on a vendor), so they ask for a twentieth of a core: the experiment's
`max_parallel` (`--workers`), not the cores, bounds how many run at once. Offline grading runs a
sentence encoder and asks for a whole core (the planner sets it).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ehrlab.core.config import SpecModel
from ehrlab.core.hashing import code_version
from ehrlab.core.kinds import Resources, TaskKind
from ehrlab.grading.model import Criterion, ModelSpec

CODE = ("ehrlab.grading.tasks", "ehrlab.grading.backends", "ehrlab.grading.scoring")
IO_BOUND = Resources(cpu=0.05, memory="256Mi")
ENCODER = Resources(cpu=1.0, memory="1Gi")


class NoteTaskParams(SpecModel):
    experiment_id: int
    case_id: int
    pair_id: int
    replication: int = Field(ge=0)
    seed: int
    transcript: str
    request_timeout_s: float = Field(120.0, gt=0)


class GenerateNoteParams(NoteTaskParams):
    model: ModelSpec
    facts: dict[str, Any] = Field(default_factory=dict)


class GradeNoteParams(NoteTaskParams):
    model: ModelSpec
    reasoning: bool = False
    rubric_id: int
    grade_replication: int = Field(ge=0)
    criteria: list[Criterion] = Field(min_length=1)


def grading_code_version() -> str:
    """The version of the code that writes and grades notes: recorded with each experiment."""
    return code_version(CODE)


KINDS = (
    TaskKind(name="generate_note", service="grader", params=GenerateNoteParams,
             run="ehrlab.grading.tasks:generate_note", code=CODE, resources=IO_BOUND, timeout_s=900,
             description="Writes one note of a case with a model pair's generator and records it."),
    TaskKind(name="grade_note", service="grader", params=GradeNoteParams, inputs=("note",),
             run="ehrlab.grading.tasks:grade_note", code=CODE, resources=IO_BOUND, timeout_s=900,
             description="Grades one note against one rubric with a model pair's grader and records the scores."),
)
