"""Where trials run: through the controller (one experiment per trial), or in threads of this process.

`ControllerRunner` submits each trial as a one-step `pipeline` experiment whose task carries the
labels `ehrlab.io/hpo-study` and `ehrlab.io/hpo-trial`, by which the task's reporter sends its
intermediate values back to this study. `InProcessRunner` runs the task kind with `run_local` in a
thread (no services): for notebooks and for testing the scheduler on its own.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ehrlab.core.context import MemoryReporter
from ehrlab.core.errors import EhrlabError, FailedPreconditionError, NotFoundError
from ehrlab.core.reporting import HPO_STUDY_LABEL, HPO_TRIAL_LABEL
from ehrlab.core.runner import EXIT_PRUNED, TaskFailure, run_local
from ehrlab.hpo.scheduler import RunResult, metric_value, request_id
from ehrlab.hpo.space import apply_params
from ehrlab.hpo.studies import ObjectiveSpec, StudyDefinition, StudyManager, TrialInfo
from ehrlab.v1 import common_pb2

log = logging.getLogger("ehrlab.hpo.runners")


def objective_experiment(name: str, objective: ObjectiveSpec, params: dict[str, Any],
                         labels: dict[str, str]) -> dict[str, Any]:
    """The experiment that runs the objective task once: a pipeline of one step, `params` merged in."""
    step: dict[str, Any] = {"kind": objective.kind, "params": apply_params(objective.params, params),
                            "inputs": objective.inputs, "labels": {**objective.labels, **labels}}
    for key in ("resources", "timeout_s", "max_attempts"):
        if getattr(objective, key) is not None:
            step[key] = getattr(objective, key)
    spec: dict[str, Any] = {"name": name, "planner": "pipeline", "steps": {"trial": step}}
    if objective.dataset:
        spec["dataset"] = {"id": objective.dataset}
    return spec


def trial_experiment(definition: StudyDefinition, trial: TrialInfo) -> dict[str, Any]:
    """The experiment that runs one trial; its task's labels route intermediate values to the study."""
    if definition.objective is None:
        raise ValueError(f"study {definition.name!r} has no objective")
    return objective_experiment(f"{definition.name}.trial-{trial.number}", definition.objective, trial.params,
                                {HPO_STUDY_LABEL: definition.name, HPO_TRIAL_LABEL: str(trial.number)})


class ControllerRunner:
    """Trials as controller experiments, followed with WatchExperiment (one stream per running trial)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._closed = threading.Event()
        self._metric: dict[str, str] = {}

    def submit(self, definition: StudyDefinition, trial: TrialInfo, retry: int) -> str:
        experiment = self.client.submit(
            trial_experiment(definition, trial), request_id=request_id(definition.name, trial.number, retry),
            labels={HPO_STUDY_LABEL: definition.name, HPO_TRIAL_LABEL: str(trial.number)})
        self._metric[experiment.id] = definition.metric
        return experiment.id

    def watch(self, run_id: str, done: Callable[[str, RunResult], None]) -> None:
        threading.Thread(target=self._follow, args=(run_id, done), name=f"hpo-watch-{run_id[:8]}",
                         daemon=True).start()

    def _follow(self, run_id: str, done: Callable[[str, RunResult], None]) -> None:
        """Waits for the run to end and reports once; a controller or result-store that is restarting is
        waited for, however long it takes."""
        while not self._closed.is_set():
            try:
                result = self._outcome(run_id)
            except NotFoundError:
                result = RunResult("lost", error="the controller no longer knows the experiment")
            except EhrlabError as exc:  # a service is restarting: follow the run again
                log.warning("following %s: %s; retrying", run_id, exc)
                self._closed.wait(2.0)
                continue
            done(run_id, result)
            return

    def _outcome(self, run_id: str) -> RunResult:
        final = self.client.wait(run_id)
        if final.state == common_pb2.EXPERIMENT_STATE_SUCCEEDED:
            return RunResult("succeeded", results=self._results(run_id))
        if final.state == common_pb2.EXPERIMENT_STATE_CANCELLED:
            return RunResult("cancelled", error=final.error)
        errors = [t.error for t in self.client.tasks(run_id) if t.error]
        return RunResult("failed", error=(errors[0] if errors else final.error) or "failed")

    def _results(self, run_id: str) -> list[dict]:
        """The task's result rows; for kinds that only report metrics (ctx.report_metrics), a row with the
        objective metric's value at its last step, averaged over label sets (folds, targets)."""
        metric = self._metric.get(run_id, "")
        for delay in (0.0, 0.05, 0.2, 0.5, 1.0):  # rows may reach the result-store just after the state
            time.sleep(delay)
            rows = self.client.results(run_id)
            if metric_value(rows, metric) is not None:
                return rows
            points = [p for p in self.client.metrics(run_id, name=metric) if isinstance(p.get("value"), (int, float))]
            if points:
                last = max(p.get("step", 0) for p in points)
                values = [p["value"] for p in points if p.get("step", 0) == last]
                return [*rows, {metric: sum(values) / len(values)}]
        return rows

    def cancel(self, run_id: str, reason: str) -> None:
        self.client.cancel(run_id, reason)

    def close(self) -> None:
        self._closed.set()


class _TrialReporter(MemoryReporter):
    """Sends a trial's intermediate values to its study, as the task reporter does for real tasks."""

    def __init__(self, manager: StudyManager, study: str, trial: int) -> None:
        super().__init__()
        self.manager, self.study, self.trial = manager, study, trial

    def intermediate(self, step: int, value: float) -> bool:
        super().intermediate(step, value)
        try:
            return self.manager.report(self.study, self.trial, step, value)
        except FailedPreconditionError:  # the study finished the trial meanwhile: stop
            return True


class InProcessRunner:
    """Runs each trial's task kind in a thread with run_local: no controller, no other services."""

    def __init__(self, manager: StudyManager, *, store_dir: Path, workers: int = 4) -> None:
        self.manager = manager
        self.store_dir = Path(store_dir)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hpo-trial")
        self._runs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def submit(self, definition: StudyDefinition, trial: TrialInfo, retry: int) -> str:
        run_id = request_id(definition.name, trial.number, retry)
        with self._lock:
            if run_id not in self._runs:
                self._runs[run_id] = self.pool.submit(self._run, definition, trial)
        return run_id

    def _run(self, definition: StudyDefinition, trial: TrialInfo) -> RunResult:
        from ehrlab.core.artifacts.local import LocalStore

        objective = definition.objective
        assert objective is not None
        inputs = {name: Path(ref["source"] if isinstance(ref, dict) else ref) for name, ref in objective.inputs.items()}
        try:
            path, _ = run_local(objective.kind, apply_params(objective.params, trial.params), inputs,
                                store=LocalStore(self.store_dir),
                                reporter=_TrialReporter(self.manager, definition.name, trial.number))
        except TaskFailure as exc:
            return RunResult("failed", error=str(exc) if exc.exit_code != EXIT_PRUNED else f"pruned: {exc}")
        except Exception as exc:
            return RunResult("failed", error=f"{type(exc).__name__}: {exc}")
        results = path / "results.jsonl"
        rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
        return RunResult("succeeded", results=rows)

    def watch(self, run_id: str, done: Callable[[str, RunResult], None]) -> None:
        self._runs[run_id].add_done_callback(lambda future: done(run_id, future.result()))

    def cancel(self, run_id: str, reason: str) -> None:
        self._runs[run_id].cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
