"""The `hpo_synthetic` task: a trainer-shaped objective with a known optimum (x=0.3, y=-0.2, category a)."""

from __future__ import annotations

import math
import time

from ehrlab.core.context import TaskContext
from ehrlab.hpo.kinds import SyntheticParams

CATEGORY_PENALTY = {"a": 0.0, "b": 0.1, "c": 0.3}


def final_loss(p: SyntheticParams) -> float:
    return (p.x - 0.3) ** 2 + (p.y + 0.2) ** 2 + CATEGORY_PENALTY.get(p.category, 0.5)


def run(ctx: TaskContext) -> None:
    p: SyntheticParams = ctx.params  # type: ignore[assignment]
    if p.crash_if_x_above is not None and p.x > p.crash_if_x_above:
        raise RuntimeError(f"training diverged (x={p.x:.4g} > {p.crash_if_x_above:.4g})")
    loss = final_loss(p)
    for epoch in range(1, p.epochs + 1):
        if p.epoch_s:
            time.sleep(p.epoch_s)
        # converges towards the final loss as epochs pass, like a learning curve
        ctx.report_intermediate(epoch, loss + math.exp(-epoch / 2))
    ctx.add_results([{"loss": loss, "score": 1.0 - loss, "epochs": p.epochs}])
