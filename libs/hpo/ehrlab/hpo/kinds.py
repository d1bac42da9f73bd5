"""Task kinds of the hpo library: a synthetic objective for drills, tests and benchmarks.

`hpo_synthetic` behaves like a small trainer without training anything: a known loss surface over
x, y and a category, one intermediate value per epoch (so pruners have something to judge), an
optional sleep per epoch (simulated GPU work), and a crash on chosen configurations.
"""

from __future__ import annotations

from pydantic import Field

from ehrlab.core.config import SpecModel
from ehrlab.core.kinds import Resources, TaskKind


class SyntheticParams(SpecModel):
    x: float = 0.0
    y: float = 0.0
    category: str = "a"
    epochs: int = Field(5, ge=1, le=10_000)
    epoch_s: float = Field(0.0, ge=0, description="seconds to sleep per epoch (simulated training)")
    crash_if_x_above: float | None = Field(None, description="raise an error when x is above this")
    seed: int = 0


KINDS = (
    TaskKind(name="hpo_synthetic", service="hpo-controller", params=SyntheticParams,
             run="ehrlab.hpo.synthetic:run", resources=Resources(cpu=0.1, memory="64Mi"), timeout_s=600,
             metrics=("loss", "score"),
             description="A known loss surface reported like a trainer does (HPO drills and benchmarks)."),
)
