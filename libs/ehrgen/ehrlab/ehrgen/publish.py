"""publish_generator: gives a trained model a name, once its evaluation report meets the gates."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from ehrlab.core.artifacts.manifest import load_complete
from ehrlab.core.context import TaskContext
from ehrlab.core.errors import SpecError
from ehrlab.ehrgen import registry
from ehrlab.ehrgen.artifact import TRAINING, model_dir
from ehrlab.ehrgen.evaluate import lookup
from ehrlab.ehrgen.kinds import PublishGeneratorParams


def failed_gates(report: dict, params: PublishGeneratorParams) -> list[str]:
    """Each gate the report misses, as a sentence; a path the report lacks is an error, not a pass."""
    problems = []
    for bounds, least in ((params.at_least, True), (params.at_most, False)):
        for path, bound in bounds.items():
            value = lookup(report, path)
            if value is None:
                raise SpecError(f"the evaluation report has no number at {path!r}",
                                path=f"params.{'at_least' if least else 'at_most'}.{path}")
            if math.isnan(value) or (value < bound if least else value > bound):
                problems.append(f"{path} = {value:.4g}, needs {'>=' if least else '<='} {bound:g}")
    return problems


def run_task(ctx: TaskContext) -> None:
    params: PublishGeneratorParams = ctx.params  # type: ignore[assignment]
    report = json.loads((ctx.inputs["report"] / "report.json").read_text())
    problems = failed_gates(report, params)
    if problems:
        raise SpecError(f"model not published as {params.name!r}: " + "; ".join(problems), path="params")
    training = json.loads((model_dir(ctx.inputs["model"]) / TRAINING).read_text())
    prefix = training.get("artifact", "")
    manifest = load_complete(ctx.store, prefix) if ctx.store is not None and prefix else None
    if manifest is None:
        raise SpecError("the model input must be a train_generator artifact in this artifact store",
                        path="inputs.model")
    pointer = {"name": params.name, "prefix": prefix, "digest": manifest.digest,
               "published": datetime.now(UTC).isoformat(timespec="seconds"), "experiment_id": ctx.experiment_id,
               "targets": report.get("targets", {})}
    registry.publish(ctx.store, params.name, pointer)
    (ctx.output_dir / "published.json").write_text(json.dumps(pointer, indent=1))
    ctx.add_results([{"name": params.name, "model": prefix, "digest": manifest.digest}])
