"""Built-in task kinds of the engine itself.

`noop` does nothing unless told to: it can sleep, emit result rows, write bytes, fail, crash or hang
on chosen attempts. Benchmarks use it to measure the engine alone; tests use it to drill faults.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from pydantic import Field

from ehrlab.core.config import SpecModel
from ehrlab.core.context import TaskContext
from ehrlab.core.kinds import Resources, TaskKind


class NoopParams(SpecModel):
    sleep_s: float = Field(0.0, ge=0)
    fail_attempts: int = Field(0, ge=0, description="raise an error on attempts 1..N")
    crash_attempts: int = Field(0, ge=0, description="kill the process on attempts 1..N")
    hang_attempts: int = Field(0, ge=0, description="never return on attempts 1..N")
    results: list[dict[str, Any]] = Field(default_factory=list)
    output_bytes: int = Field(0, ge=0)
    payload: Any = None


def noop(ctx: TaskContext) -> None:
    p: NoopParams = ctx.params  # type: ignore[assignment]
    if ctx.attempt <= p.crash_attempts:
        os._exit(137)
    if ctx.attempt <= p.hang_attempts:
        while True:
            time.sleep(3600)
    if p.sleep_s:
        time.sleep(p.sleep_s)
    if ctx.attempt <= p.fail_attempts:
        raise RuntimeError(f"failing on purpose on attempt {ctx.attempt}")
    seen = {name: sorted(os.listdir(path)) if path.is_dir() else [path.name] for name, path in ctx.inputs.items()}
    (ctx.output_dir / "done.json").write_text(json.dumps({"attempt": ctx.attempt, "inputs": seen}))
    if p.output_bytes:
        with open(ctx.output_dir / "blob.bin", "wb") as handle:
            handle.write(os.urandom(p.output_bytes))
    ctx.add_results(p.results)


KINDS = (
    TaskKind(name="noop", service="controller", params=NoopParams, run="ehrlab.core.builtin:noop",
             optional_inputs=("*",), resources=Resources(cpu=0.1, memory="64Mi"), timeout_s=600,
             description="Does nothing unless told to (benchmarks, fault drills)."),
    TaskKind(name="noop_partial", service="controller", params=NoopParams, run="ehrlab.core.builtin:noop",
             optional_inputs=("*",), partial_inputs=True, resources=Resources(cpu=0.1, memory="64Mi"),
             timeout_s=600, description="noop that runs without inputs whose producers failed."),
)
