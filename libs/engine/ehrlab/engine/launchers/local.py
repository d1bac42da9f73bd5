"""The LocalLauncher: task attempts as local processes, bounded by cores and GPU slots.

Two modes, the same entrypoint (`ehrlab.core.runner`):
- `pool` (default): long-lived worker processes (`ehrlab.engine.worker`) each run one attempt at a
  time, so an attempt costs no interpreter start. Kinds marked `fresh_process`, and GPU attempts
  (which get their own CUDA_VISIBLE_DEVICES), run in a worker that exits afterwards.
- `exec`: one `ehrlab task run <task-id> --attempt N` process per attempt, exactly what a
  Kubernetes Job runs.

Either way each process runs in its own session: a crash, a kill or a hang past the timeout ends
that attempt only (it is reported FAILED and the engine retries it), and a controller killed with
SIGKILL leaves its attempts running. Every attempt leaves `<attempt>.run` and `<attempt>.done` files
in the state directory, which is how a restarted controller adopts attempts it did not start.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ehrlab.core.runner import EXIT_CONFIG, EXIT_OK, EXIT_PRUNED, read_outcome
from ehrlab.core.settings import LocalLauncherSettings
from ehrlab.engine.launchers import Attempt, AttemptResult, Capacity, Launcher, Outcome
from ehrlab.engine.worker import process_identity

log = logging.getLogger("ehrlab.launcher.local")
_OUTCOMES = {EXIT_OK: Outcome.SUCCEEDED, EXIT_CONFIG: Outcome.CONFIG_ERROR, EXIT_PRUNED: Outcome.PRUNED}


def _outcome(exit_code: int) -> Outcome:
    return _OUTCOMES.get(exit_code, Outcome.FAILED)


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "the process vanished"
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


@dataclass(eq=False)
class _Process:
    """A worker (pool mode) or a single attempt's process (exec mode)."""

    popen: subprocess.Popen[bytes]
    reusable: bool
    attempt_id: str | None = None
    tasks_run: int = 0
    dead: bool = False


@dataclass
class _Running:
    attempt: Attempt
    process: _Process | None       # None for adopted attempts (another controller started them)
    deadline: float
    gpu_ids: list[int] = field(default_factory=list)


class LocalLauncher(Launcher):
    def __init__(self, settings: LocalLauncherSettings, state_dir: Path, *, env: dict[str, str] | None = None,
                 on_change: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.state_dir = Path(state_dir)
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **(env or {})}
        self.on_change = on_change
        self._running: dict[str, _Running] = {}
        self._idle: list[_Process] = []
        self._finished: queue.SimpleQueue[AttemptResult] = queue.SimpleQueue()
        self._free_gpus = list(range(settings.gpus))
        self._lock = threading.Lock()
        self._last_adopt_check = 0.0
        if settings.mode == "pool":  # warm workers, so the first attempts do not wait for interpreters
            for _ in range(max(1, int(settings.cpus))):
                self._idle.append(self._start_worker(True, self.env))

    # --- capacity --------------------------------------------------------------------------------

    def capacity(self) -> Capacity:
        with self._lock:
            used = sum(r.attempt.resources.cpu for r in self._running.values())
            return Capacity(cpu=self.settings.cpus - used, gpu=len(self._free_gpus),
                            slots=self.settings.max_processes - len(self._running))

    # --- launching -------------------------------------------------------------------------------

    def launch(self, attempts: list[Attempt]) -> None:
        for attempt in attempts:
            gpu_ids = [self._free_gpus.pop(0) for _ in range(attempt.resources.gpu)]
            env = dict(self.env)
            if attempt.resources.gpu:
                env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpu_ids))
            if self.settings.mode == "exec":
                process = self._spawn_exec(attempt, env)
                self._track(attempt, process, gpu_ids)
                threading.Thread(target=self._wait_exec, args=(process, attempt.attempt_id), daemon=True,
                                 name="exec-waiter").start()
            else:
                reusable = not (attempt.kind.fresh_process or attempt.resources.gpu)
                process = self._take_worker(reusable, env)
                process.attempt_id = attempt.attempt_id
                self._track(attempt, process, gpu_ids)
                message = {"attempt_id": attempt.attempt_id, "spec": attempt.spec.to_json(),
                           "exit_after": not reusable}
                try:
                    process.popen.stdin.write((json.dumps(message) + "\n").encode())  # type: ignore[union-attr]
                    process.popen.stdin.flush()  # type: ignore[union-attr]
                except (BrokenPipeError, OSError):
                    process.dead = True  # the reader thread reports the attempt as failed

    def _track(self, attempt: Attempt, process: _Process, gpu_ids: list[int]) -> None:
        """Records a running attempt before its process can end it: a fast attempt's outcome must find it."""
        attempt.handle = {"pid": process.popen.pid, "create_time": _create_time(process.popen.pid),
                          "state_dir": str(self.state_dir)}
        with self._lock:
            self._running[attempt.attempt_id] = _Running(attempt, process, time.monotonic() + attempt.timeout_s,
                                                         gpu_ids)

    def _take_worker(self, reusable: bool, env: dict[str, str]) -> _Process:
        while reusable:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            if worker is None:
                break
            if not worker.dead and worker.popen.poll() is None:
                return worker
        return self._start_worker(reusable, env)

    def _start_worker(self, reusable: bool, env: dict[str, str]) -> _Process:
        popen = subprocess.Popen(
            [sys.executable, "-m", "ehrlab.engine.worker", "--state-dir", str(self.state_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, start_new_session=True)
        process = _Process(popen, reusable)
        threading.Thread(target=self._read_worker, args=(process,), daemon=True, name="worker-reader").start()
        return process

    def _spawn_exec(self, attempt: Attempt, env: dict[str, str]) -> _Process:
        env = {**env, "EHRLAB_ATTEMPT_OUTCOME": str(self.state_dir / f"{attempt.attempt_id}.done"),
               "EHRLAB_TERMINATION_LOG": str(self.state_dir / f"{attempt.attempt_id}.msg")}
        log_file = open(self.state_dir / "logs" / f"{attempt.attempt_id}.log", "ab")  # noqa: SIM115 (child keeps it)
        popen = subprocess.Popen(
            [sys.executable, "-m", "ehrlab.cli.main", "task", "run", attempt.task_id, "--attempt", str(attempt.number)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log_file.close()
        (self.state_dir / f"{attempt.attempt_id}.run").write_text(json.dumps(process_identity(popen.pid)))
        return _Process(popen, reusable=False, attempt_id=attempt.attempt_id)

    # --- outcomes --------------------------------------------------------------------------------

    def _report(self, attempt_id: str, outcome: Outcome, message: str, exit_code: int | None) -> None:
        with self._lock:
            running = self._running.pop(attempt_id, None)
            if running is None:
                return  # already reported (a killed process may still report, or die, afterwards)
            self._free_gpus.extend(running.gpu_ids)
        self._finished.put(AttemptResult(attempt_id, outcome, message, exit_code))
        self.on_change()

    def _read_worker(self, process: _Process) -> None:
        for line in process.popen.stdout:  # type: ignore[union-attr]
            reply = json.loads(line)
            attempt_id = reply["attempt_id"]
            process.attempt_id = None
            process.tasks_run += 1
            self._report(attempt_id, _outcome(reply["exit_code"]), reply["message"], reply["exit_code"])
            if process.reusable and process.tasks_run < self.settings.max_tasks_per_worker:
                with self._lock:
                    self._idle.append(process)
            elif process.reusable:
                process.popen.stdin.close()  # type: ignore[union-attr]
        process.dead = True
        returncode = process.popen.wait()
        if process.attempt_id is not None:  # died in the middle of an attempt
            self._report(process.attempt_id, Outcome.FAILED, f"worker process {_describe_exit(returncode)}",
                         returncode)

    def _wait_exec(self, process: _Process, attempt_id: str) -> None:
        returncode = process.popen.wait()
        outcome = read_outcome(self.state_dir / f"{attempt_id}.done")
        if outcome is None:
            message_file = self.state_dir / f"{attempt_id}.msg"
            message = message_file.read_text().strip() if message_file.exists() else ""
            self._report(attempt_id, Outcome.FAILED, message or f"process {_describe_exit(returncode)}", returncode)
        else:
            self._report(attempt_id, _outcome(outcome[0]), outcome[1], outcome[0])

    def poll(self) -> list[AttemptResult]:
        now = time.monotonic()
        with self._lock:
            overdue = [r for r in self._running.values() if now > r.deadline]
        for running in overdue:
            self._kill(running)
            self._report(running.attempt.attempt_id, Outcome.FAILED,
                         f"timed out after {running.attempt.timeout_s:g}s and was killed", None)
        if now - self._last_adopt_check > 0.5:
            self._last_adopt_check = now
            self._check_adopted()
        results = []
        while True:
            try:
                results.append(self._finished.get_nowait())
            except queue.Empty:
                return results

    # --- adoption after a controller restart -----------------------------------------------------

    def adopt(self, attempts: list[Attempt]) -> None:
        for attempt in attempts:
            with self._lock:
                self._running[attempt.attempt_id] = _Running(attempt, None, time.monotonic() + attempt.timeout_s)
        self._check_adopted()

    def _check_adopted(self) -> None:
        with self._lock:
            adopted = [r for r in self._running.values() if r.process is None]
        for running in adopted:
            attempt_id = running.attempt.attempt_id
            outcome = read_outcome(self.state_dir / f"{attempt_id}.done")
            if outcome is not None:
                self._report(attempt_id, _outcome(outcome[0]), outcome[1], outcome[0])
            elif _alive(running.attempt.handle or _run_file(self.state_dir, attempt_id)):
                continue
            elif not (self.state_dir / f"{attempt_id}.run").exists():
                # recorded, but no process ever started it: it did not run, so it uses no attempt
                self._report(attempt_id, Outcome.DISRUPTED, "not started before the controller restarted", None)
            elif read_outcome(self.state_dir / f"{attempt_id}.done") is None:  # it may have ended meanwhile
                self._report(attempt_id, Outcome.FAILED, "the attempt's process vanished without an outcome", None)

    # --- stopping --------------------------------------------------------------------------------

    def cancel(self, attempt_ids: list[str], reason: str) -> None:
        for attempt_id in attempt_ids:
            with self._lock:
                running = self._running.get(attempt_id)
            if running is not None:
                self._kill(running)
                self._report(attempt_id, Outcome.FAILED, reason, None)

    def _kill(self, running: _Running) -> None:
        if running.process is not None:
            running.process.dead = True
            running.process.attempt_id = None
            pid = running.process.popen.pid
        else:  # adopted: kill it only if it is still the same process
            identity = running.attempt.handle or _run_file(self.state_dir, running.attempt.attempt_id)
            pid = identity.get("pid") if _alive(identity) else None
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def close(self) -> None:
        """Lets workers finish what they run and exit; idle ones exit now."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            try:
                worker.popen.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
        for running in list(self._running.values()):
            if running.process is not None and running.process.popen.stdin:
                try:
                    running.process.popen.stdin.close()
                except OSError:
                    pass


def _run_file(state_dir: Path, attempt_id: str) -> dict:
    """The process identity an attempt recorded when it started (if the controller died before saving it)."""
    try:
        return json.loads((state_dir / f"{attempt_id}.run").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _alive(handle: dict) -> bool:
    """Whether the process in `handle` still runs (the same process: pids are reused)."""
    pid = handle.get("pid")
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        created = handle.get("create_time")
        same = created is None or abs(process.create_time() - created) < 1
        return process.status() != psutil.STATUS_ZOMBIE and same
    except psutil.Error:
        return False
