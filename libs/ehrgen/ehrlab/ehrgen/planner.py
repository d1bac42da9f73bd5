"""The `ehr_generator` planner: (simulate →) train → evaluate (→ publish).

    name: ehrgen-sim
    planner: ehr_generator
    seed: 42
    cohort: {source: ./data/meds}            # MEDS directory, MIMIC-III CSV directory or JSON lines
    # or: cohort: {simulate: {n_patients: 25000}}   (params of the simulate_cohort task)
    train: {size: small, epochs: 5}          # train_generator params; seed defaults to the spec's
    evaluate: {n_synthetic: 5000}            # evaluate_generator params
    heldout: {source: ./data/other_meds}     # optional: evaluate on this instead of the held-out split
    publish: {name: sim-small, at_least: {validity.valid_fraction: 1.0}}   # optional
    resources: {train: {gpu: 0, node_pool: ""}}                              # optional overrides

With `model: {source: DIR}` instead of `train`, an existing model is evaluated (and published).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from ehrlab.core.config import SpecModel
from ehrlab.core.errors import SpecError
from ehrlab.core.planning import ExperimentSpec, FunctionPlanner, PlanContext, Source, TaskNode
from ehrlab.ehrgen.kinds import PublishGeneratorParams


class CohortSpec(SpecModel):
    source: str = ""
    simulate: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> CohortSpec:
        if bool(self.source) == (self.simulate is not None):
            raise ValueError("give exactly one of cohort.source and cohort.simulate")
        return self


class SourceSpec(SpecModel):
    source: str = Field(min_length=1)


class EhrGeneratorSpec(ExperimentSpec):
    planner: str = "ehr_generator"
    cohort: CohortSpec
    train: dict[str, Any] | None = None
    model: SourceSpec | None = None
    evaluate: dict[str, Any] = Field(default_factory=dict)
    heldout: SourceSpec | None = None
    publish: PublishGeneratorParams | None = None
    resources: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _train_or_model(self) -> EhrGeneratorSpec:
        if self.train is not None and self.model is not None:
            raise ValueError("give train (to train a model) or model (to evaluate an existing one), not both")
        unknown = set(self.resources) - {"simulate", "train", "evaluate", "publish"}
        if unknown:
            raise ValueError(f"resources: unknown step {sorted(unknown)[0]!r} (simulate, train, evaluate, publish)")
        return self


def plan(spec: EhrGeneratorSpec, ctx: PlanContext) -> list[TaskNode]:
    nodes: list[TaskNode] = []

    def node(name: str, kind: str, params: dict[str, Any], inputs: dict[str, str | Source], path: str) -> None:
        nodes.append(TaskNode(name=name, kind=kind, params=params, inputs=inputs,
                              resources=spec.resources.get(name), spec_path=path))

    cohort: str | Source
    if spec.cohort.simulate is not None:
        node("simulate", "simulate_cohort", {"seed": spec.seed, **spec.cohort.simulate}, {}, "cohort.simulate")
        cohort = "simulate"
    else:
        cohort = Source(spec.cohort.source)
    if spec.model is not None:
        model: str | Source = Source(spec.model.source)
    else:
        node("train", "train_generator", {"seed": spec.seed, **(spec.train or {})}, {"cohort": cohort}, "train")
        model = "train"
    inputs: dict[str, str | Source] = {"model": model, "cohort": cohort}
    if spec.heldout is not None:
        inputs["heldout"] = Source(spec.heldout.source)
    node("evaluate", "evaluate_generator", {"seed": spec.seed, **spec.evaluate}, inputs, "evaluate")
    if spec.publish is not None:
        if spec.model is not None:
            raise SpecError("publishing needs a model trained by this experiment (give train, not model)",
                            path="publish")
        node("publish", "publish_generator", spec.publish.model_dump(), {"model": "train", "report": "evaluate"},
             "publish")
    return nodes


PLANNER = FunctionPlanner("ehr_generator", EhrGeneratorSpec, plan)
