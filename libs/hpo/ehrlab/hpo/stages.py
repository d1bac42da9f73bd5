"""Maximal and multi-stage modes on top of the hpo-controller.

Maximal: one study `<name>-max` over the spec's whole space.

Multi-stage: S0 sanity `<name>-s0` (few trials, few epochs: stops everything if no trial completes),
S1 coarse `<name>-s1`, S2 fine `<name>-s2` over the space narrowed around the `top_k` best S1 trials
(`SearchSpace.narrow`: each numeric range becomes the span of their values, in log space for log
parameters, padded by `padding` x that span (at least 10% of the original width) on each side and
clipped to the original range; categoricals keep the choices those trials used), with the best S1
point evaluated first. S3 refits the best configuration (S2's, else S1's) on train+val once per seed
and reports the refit metric as mean ± SD over the seeds.

Every step is idempotent: studies resume (S2 keeps the space it was created with), refit runs are
submitted with fixed request ids, so re-running the command picks up where it stopped.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ehrlab.core.errors import EhrlabError, NotFoundError, SpecError
from ehrlab.core.kinds import get_kind
from ehrlab.hpo.client import HpoClient
from ehrlab.hpo.runners import objective_experiment
from ehrlab.hpo.scheduler import metric_value
from ehrlab.hpo.space import SearchSpace
from ehrlab.hpo.spec import STAGES, HpoSpec
from ehrlab.hpo.studies import StudyDefinition
from ehrlab.v1 import common_pb2, hpo_pb2

Progress = Callable[[hpo_pb2.Study], None]


@dataclass
class Overrides:
    """Command-line overrides: --n-trials, --parallel, --timeout."""

    n_trials: int | None = None
    parallel: int | None = None
    timeout_s: float | None = None


@dataclass
class RefitResult:
    study: str
    metric: str
    params: dict[str, Any]
    values: dict[int, float] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values.values()) if self.values else math.nan

    @property
    def sd(self) -> float:
        return statistics.stdev(self.values.values()) if len(self.values) > 1 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": self.mean, "sd": self.sd, "n": len(self.values)}


def _apply(definition: StudyDefinition, overrides: Overrides, *, budget: bool) -> StudyDefinition:
    update: dict[str, Any] = {}
    if overrides.parallel is not None:
        update["parallelism"] = overrides.parallel
    if overrides.timeout_s is not None:
        update["timeout_s"] = overrides.timeout_s
    if budget and overrides.n_trials is not None:
        update["n_trials"] = overrides.n_trials
    return definition.model_copy(update=update)


def run_study(hpo: HpoClient, definition: StudyDefinition, progress: Progress | None = None) -> hpo_pb2.Study:
    hpo.create(definition)
    return hpo.wait(definition.name, progress=progress)


def maximal(spec: HpoSpec, hpo: HpoClient, overrides: Overrides, progress: Progress | None = None) -> hpo_pb2.Study:
    if spec.maximal is None:
        raise SpecError("the spec has no `maximal` section", path="maximal", source=spec._source)
    definition = spec.study("max", spec.maximal.space, n_trials=spec.maximal.n_trials,
                            timeout_s=spec.maximal.timeout_s, path="maximal")
    return run_study(hpo, _apply(definition, overrides, budget=True), progress)


def stage_definition(spec: HpoSpec, stage: str, hpo: HpoClient) -> StudyDefinition:
    """The study of search stage s0, s1 or s2 (s2 from S1's results, or as it was first created)."""
    assert spec.multistage is not None
    config = getattr(spec.multistage.stages, stage)
    if config is None:
        raise SpecError(f"stage {stage} is switched off in this spec", path=f"multistage.stages.{stage}",
                        source=spec._source)
    space, enqueue = spec.multistage.space, []
    if stage == "s2":
        try:  # resumed: the space S2 was created with (S1 may have grown since)
            space = hpo.definition(f"{spec.name}-s2").space
        except NotFoundError:
            best = hpo.top_k(f"{spec.name}-s1", config.top_k)
            if not best:
                raise EhrlabError(f"stage s2 needs completed trials of {spec.name}-s1: run stage s1 first") from None
            space = SearchSpace.parse(space).narrow([t.params for t in best], padding=config.padding).to_dict()
            enqueue = [best[0].params]
    return spec.study(stage, space, n_trials=config.n_trials, params=config.params, sampler=config.sampler,
                      pruner=config.pruner, timeout_s=config.timeout_s, enqueue=enqueue, path="multistage")


def best_config(spec: HpoSpec, hpo: HpoClient) -> tuple[str, dict[str, Any]]:
    """The study and point refit uses: the best of S2, or of S1 when S2 is off or has no result."""
    for stage in ("s2", "s1"):
        try:
            best = hpo.top_k(f"{spec.name}-{stage}", 1)
        except NotFoundError:
            continue
        if best:
            return f"{spec.name}-{stage}", best[0].params
    raise EhrlabError(f"refit needs a completed trial in {spec.name}-s2 or {spec.name}-s1: run those stages first")


def refit(spec: HpoSpec, hpo: HpoClient, client: Any, report: Callable[[str], None] = print) -> RefitResult:
    """S3: the best configuration trained on train+val once per seed, evaluated on test."""
    assert spec.multistage is not None and spec.multistage.stages.s3 is not None
    config = spec.multistage.stages.s3
    kind = get_kind(spec.objective.kind)
    if config.metric not in kind.metrics:
        raise SpecError(f"task kind {kind.name!r} never reports {config.metric!r}", path="multistage.stages.s3.metric",
                        source=spec._source)
    study, params = best_config(spec, hpo)
    result = RefitResult(f"{spec.name}-s3", config.metric, params)
    experiments = {}
    for seed in config.seeds:
        point = {**params, **config.params, config.seed_param: seed}
        labels = {"ehrlab.io/hpo-refit": spec.name, "ehrlab.io/hpo-seed": str(seed)}
        experiment = client.submit(objective_experiment(f"{spec.name}-s3.seed-{seed}", spec.objective, point, labels),
                                   request_id=f"hpo/{spec.name}-s3/seed-{seed}", labels=labels)
        experiments[seed] = experiment.id
        report(f"refit seed {seed}: experiment {experiment.id} (best point of {study})")
    for seed, experiment_id in experiments.items():
        final = client.wait(experiment_id)
        if final.state != common_pb2.EXPERIMENT_STATE_SUCCEEDED:
            errors = [t.error for t in client.tasks(experiment_id) if t.error]
            result.errors[seed] = (errors[0] if errors else final.error) or "failed"
            continue
        value = metric_value(client.results(experiment_id), config.metric)
        if value is None:
            result.errors[seed] = f"the task did not report {config.metric!r}"
        else:
            result.values[seed] = value
    return result


def multistage(spec: HpoSpec, hpo: HpoClient, client: Any, overrides: Overrides, *, only: str | None = None,
               progress: Progress | None = None, report: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs the stages in order (or only one); returns each stage's final study or the refit result."""
    if spec.multistage is None:
        raise SpecError("the spec has no `multistage` section", path="multistage", source=spec._source)
    if only is not None and only not in STAGES:
        raise SpecError(f"unknown stage {only!r} (stages: {', '.join(STAGES)})", path="--stage")
    outcome: dict[str, Any] = {}
    for stage in STAGES:
        if only is not None and stage != only:
            continue
        if getattr(spec.multistage.stages, stage) is None:
            continue
        if stage == "s3":
            outcome[stage] = refit(spec, hpo, client, report)
            continue
        report(f"stage {stage}: study {spec.name}-{stage}")
        definition = _apply(stage_definition(spec, stage, hpo), overrides, budget=only is not None)
        study = run_study(hpo, definition, progress)
        outcome[stage] = study
        if stage == "s0" and study.counts.complete == 0:
            raise EhrlabError(f"sanity stage: no trial of {definition.name} completed "
                              f"({study.counts.failed} failed, {study.counts.pruned} pruned); "
                              f"see `ehrlab hpo show-best {definition.name}` and the trials' errors")
    return outcome
