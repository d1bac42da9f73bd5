"""The HPO spec: one YAML file for both modes, turned into study definitions.

    name: symptoms
    metric: val_macro_f1            # a metric the objective's task kind reports
    direction: maximize
    objective:                      # any task kind; each trial runs it with the trial's point merged in
      kind: train_text_classifier
      inputs: {data: {source: data/symptom_sentences.csv}}   # relative paths: relative to this file
      params: {encoder: "registry:minilm", epochs: 4}
    sampler: {name: tpe, seed: 0}
    pruner: {name: hyperband, min_resource: 1, max_resource: 4, patience: 1}
    parallel: 2
    maximal: {n_trials: 300, space: {...}}                   # one large study: <name>-max
    multistage:                                              # studies <name>-s0, -s1, -s2, then the refit
      space: {...}
      stages:
        s0: {n_trials: 8, params: {epochs: 1}}               # sanity: few trials, few epochs
        s1: {n_trials: 20}                                   # coarse
        s2: {n_trials: 50, top_k: 5, padding: 0.2}           # fine: around the best S1 trials
        s3: {seeds: [1, 2, 3], metric: test_macro_f1, params: {train_on: [train, val]}}   # refit
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr

from ehrlab.core.config import SpecModel, load_layer, merge_layers, validate
from ehrlab.core.errors import SpecError
from ehrlab.hpo.space import apply_params
from ehrlab.hpo.studies import NAME_PATTERN, ObjectiveSpec, StudyDefinition, parse_definition

STAGES = ("s0", "s1", "s2", "s3")


class SearchStage(SpecModel):
    n_trials: int = Field(ge=1)
    params: dict[str, Any] = Field(default_factory=dict)     # objective parameters for this stage only
    sampler: dict[str, Any] | None = None
    pruner: dict[str, Any] | None = None
    timeout_s: float = Field(0.0, ge=0)


class FineStage(SearchStage):
    top_k: int = Field(5, ge=1)          # the best S1 trials the range is narrowed around
    padding: float = Field(0.2, ge=0)    # of the span of their values (see SearchSpace.narrow)


class RefitStage(SpecModel):
    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3], min_length=1)
    seed_param: str = "seed"                               # the objective parameter that takes the seed
    metric: str = Field(min_length=1)                      # reported on test, e.g. test_macro_f1
    params: dict[str, Any] = Field(default_factory=dict)   # e.g. {train_on: [train, val]}


class Stages(SpecModel):
    s0: SearchStage | None = Field(default_factory=lambda: SearchStage(n_trials=8, params={"epochs": 3}))
    s1: SearchStage = Field(default_factory=lambda: SearchStage(n_trials=20))
    s2: FineStage | None = Field(default_factory=lambda: FineStage(n_trials=50))
    s3: RefitStage | None = None


class MultistageSpec(SpecModel):
    space: dict[str, Any]
    stages: Stages = Field(default_factory=Stages)


class MaximalSpec(SpecModel):
    space: dict[str, Any]
    n_trials: int = Field(300, ge=1)
    timeout_s: float = Field(0.0, ge=0)


class HpoSpec(SpecModel):
    name: str = Field(pattern=NAME_PATTERN, max_length=180)
    metric: str = Field(min_length=1)
    direction: Literal["maximize", "minimize"] = "maximize"
    objective: ObjectiveSpec
    sampler: dict[str, Any] = Field(default_factory=dict)
    pruner: dict[str, Any] = Field(default_factory=dict)
    parallel: int = Field(1, ge=1)
    max_retries: int = Field(2, ge=0)
    heartbeat_timeout_s: float = Field(0.0, ge=0)
    multistage: MultistageSpec | None = None
    maximal: MaximalSpec | None = None
    _source: str = PrivateAttr("")

    def study(self, suffix: str, space: dict[str, Any], *, n_trials: int, params: dict[str, Any] | None = None,
              sampler: dict[str, Any] | None = None, pruner: dict[str, Any] | None = None, timeout_s: float = 0.0,
              enqueue: list[dict[str, Any]] | None = None, path: str = "") -> StudyDefinition:
        objective = self.objective.model_copy(update={"params": apply_params(self.objective.params, params or {})})
        data = {"name": f"{self.name}-{suffix}", "metric": self.metric, "direction": self.direction, "space": space,
                "sampler": sampler if sampler is not None else self.sampler,
                "pruner": pruner if pruner is not None else self.pruner, "n_trials": n_trials,
                "parallelism": self.parallel, "timeout_s": timeout_s, "objective": objective.model_dump(),
                "max_retries": self.max_retries, "heartbeat_timeout_s": self.heartbeat_timeout_s,
                "enqueue": enqueue or []}
        try:
            return parse_definition(data)
        except SpecError as exc:  # name the key in the HPO spec, not in the derived study
            where = exc.path if exc.path.startswith(("objective", "metric")) or not path else f"{path}.{exc.path}"
            raise SpecError(exc.message, path=where, source=self._source) from None


def load_spec(path: str | Path) -> HpoSpec:
    """Reads and validates an HPO spec; input sources are made absolute (relative to the file)."""
    layer = load_layer(path)
    spec = validate(HpoSpec, merge_layers([layer]), source=str(path))
    if spec.multistage is None and spec.maximal is None:
        raise SpecError("the spec needs `multistage` or `maximal` (or both)", source=str(path))
    base = Path(path).absolute().parent
    inputs = {}
    for name, ref in spec.objective.inputs.items():
        if isinstance(ref, dict) and isinstance(ref.get("source"), str) and "://" not in ref["source"]:
            ref = {**ref, "source": str((base / ref["source"]).resolve())}
        inputs[name] = ref
    spec.objective = spec.objective.model_copy(update={"inputs": inputs})
    spec._source = str(path)
    return spec
