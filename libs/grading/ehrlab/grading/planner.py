"""Planner `note_grading`: a grading experiment in the GradingStore becomes generate/grade tasks.

    name: compare-graders
    planner: note_grading
    grading: {experiment: compare-graders}     # the GradingStore experiment (name or id)
    options: {max_parallel: 3, max_attempts: 3, retry_backoff_s: 2}

For every eligible case × model pair × note replication, a `generate_note` task; for every note ×
eligible rubric (the latest accepted rubric of each of up to two distinct human authors) × grade
replication, a `grade_note` task that takes the note as its input. Cases without an eligible
rubric get no tasks; the reason is recorded with the experiment (`ehrlab grading experiment show`).
`max_parallel` defaults to 3 workers, as the original runner did.

The cases, rubrics and model pairs are read from the GradingStore when the experiment is planned:
from `PlanContext.services["grading"]` (a GradingClient) or `["result-store"]` (a channel to the
result-store) when the controller passes one, else from the result-store address in the settings.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from pydantic import Field

from ehrlab.core.config import SpecModel
from ehrlab.core.errors import SpecError
from ehrlab.core.hashing import hash_value
from ehrlab.core.planning import ExperimentSpec, FunctionPlanner, OptionsSpec, PlanContext, TaskNode
from ehrlab.grading import wire
from ehrlab.grading.client import GradingClient
from ehrlab.grading.kinds import ENCODER
from ehrlab.grading.model import Vendor

DEFAULT_WORKERS = 3


class GradingSection(SpecModel):
    experiment: str = Field(min_length=1)
    request_timeout_s: float = Field(120.0, gt=0)   # per model call
    store_address: str = ""                          # GradingStore (result-store) address; default: settings


class GradingOptions(OptionsSpec):
    max_parallel: int = Field(DEFAULT_WORKERS, ge=0)


class NoteGradingSpec(ExperimentSpec):
    planner: str = "note_grading"
    grading: GradingSection
    options: GradingOptions = Field(default_factory=GradingOptions)


def task_seed(*parts: Any) -> int:
    """A seed per task, derived from the experiment seed and what the task is (recorded in its params)."""
    return int(hash_value(list(parts))[:8], 16)


def store_client(spec: NoteGradingSpec, ctx: PlanContext, stack: ExitStack) -> GradingClient:
    """The controller's client when it passes one; else one of our own, closed with `stack`."""
    if "grading" in ctx.services:
        return ctx.services["grading"]
    if not spec.grading.store_address:
        try:  # the controller opens channels on first use: `in` would not find one not yet opened
            return GradingClient(ctx.services["result-store"])
        except KeyError:
            pass
    return stack.enter_context(GradingClient.connect(spec.grading.store_address))


def plan(spec: NoteGradingSpec, ctx: PlanContext) -> list[TaskNode]:
    with ExitStack() as stack:
        return _plan(spec, store_client(spec, ctx, stack))


def _plan(spec: NoteGradingSpec, client: GradingClient) -> list[TaskNode]:
    plan = client.plan_cases(spec.grading.experiment)
    experiment = wire.experiment_from(plan.experiment)
    pairs = [wire.pair_from(p) for p in plan.pairs]
    if not pairs:
        raise SpecError(f"grading experiment {experiment.name!r} has no model pairs "
                        "(add one with `ehrlab grading experiment add-model`)", path="grading.experiment")
    skips = {c.case.id: c.skip_reason for c in plan.cases if c.skip_reason}
    client.record_skips(experiment.id, skips)
    nodes: list[TaskNode] = []
    for case_plan in plan.cases:
        if case_plan.skip_reason:
            continue
        case = wire.stored_case_from(case_plan.case)
        for pair in pairs:
            for replication in range(experiment.note_replications):
                common = {"experiment_id": experiment.id, "case_id": case.id, "pair_id": pair.id,
                          "replication": replication, "transcript": case.transcript,
                          "request_timeout_s": spec.grading.request_timeout_s}
                labels = {"case": case.name, "pair": str(pair.id)}
                note = TaskNode(
                    name=f"note-c{case.id}-p{pair.id}-r{replication}", kind="generate_note", labels=labels,
                    params={**common, "model": pair.generator.model_dump(mode="json", exclude={"id"}),
                            "facts": case.facts, "seed": task_seed(spec.seed, case.id, pair.id, replication)})
                nodes.append(note)
                for rubric in case.rubrics:
                    for grade in range(experiment.grade_replications):
                        nodes.append(TaskNode(
                            name=f"grade-c{case.id}-p{pair.id}-r{replication}-u{rubric.id}-g{grade}",
                            kind="grade_note", inputs={"note": note.name}, labels=labels,
                            resources=ENCODER.model_dump() if pair.grader.vendor is Vendor.OFFLINE else None,
                            params={**common, "model": pair.grader.model_dump(mode="json", exclude={"id"}),
                                    "reasoning": pair.grader_is_reasoning, "rubric_id": rubric.id,
                                    "grade_replication": grade,
                                    "criteria": [c.model_dump(mode="json") for c in rubric.criteria],
                                    "seed": task_seed(spec.seed, case.id, pair.id, replication, rubric.id, grade)}))
    if not nodes:
        raise SpecError(f"grading experiment {experiment.name!r} has no eligible case ({len(skips)} skipped: "
                        "each needs accepted rubrics by two distinct human authors)", path="grading.experiment")
    return nodes


PLANNER = FunctionPlanner(name="note_grading", spec_model=NoteGradingSpec, function=plan)
