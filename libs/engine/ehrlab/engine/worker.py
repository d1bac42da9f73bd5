"""A local worker process: runs task attempts one at a time for the LocalLauncher.

Protocol: one JSON line per attempt on stdin ({"attempt_id", "spec", "exit_after"}); for each, the
worker writes `<attempt>.run` (its pid) before and `<attempt>.done` (exit code, message) after, in the
launcher's state directory, then echoes the outcome as one JSON line on its protocol pipe. The
task's own stdout/stderr go to `logs/<attempt>.log`, never into the protocol.

When the controller goes away (stdin closes), the worker finishes the attempt in hand, records it,
and exits: a restarted controller adopts the outcome from the files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import psutil

from ehrlab.core.artifacts import open_store
from ehrlab.core.reporting import GrpcReporter
from ehrlab.core.runner import TaskSpec, record_outcome, run_attempt
from ehrlab.core.settings import Settings, load_settings


def _run_one(message: dict, state_dir: Path, protocol: int, settings: Settings, scratch: Path) -> None:
    attempt_id = message["attempt_id"]
    spec = TaskSpec.from_json(message["spec"])
    (state_dir / f"{attempt_id}.run").write_text(json.dumps(process_identity()))
    log_path = state_dir / "logs" / f"{attempt_id}.log"
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        reporter = GrpcReporter(spec, settings) if os.environ.get("EHRLAB_RESULT_STORE_ADDR") else None
        try:
            code, text = run_attempt(spec, reporter=reporter, scratch=scratch)
        finally:
            if reporter is not None:
                reporter.close()
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    record_outcome(state_dir / f"{attempt_id}.done", code, text)
    os.write(protocol, (json.dumps({"attempt_id": attempt_id, "exit_code": code, "message": text}) + "\n").encode())


def process_identity(pid: int | None = None) -> dict[str, float | int | None]:
    """A pid with its start time: pids are reused, the pair is not."""
    process = psutil.Process(pid)
    return {"pid": process.pid, "create_time": process.create_time()}


def main() -> None:
    parser = argparse.ArgumentParser(description="ehrlab local worker (started by the LocalLauncher)")
    parser.add_argument("--state-dir", required=True, type=Path)
    args = parser.parse_args()
    (args.state_dir / "logs").mkdir(parents=True, exist_ok=True)
    protocol = os.dup(1)  # the launcher reads outcomes here; fd 1 itself is pointed at task logs
    os.dup2(2, 1)
    settings = load_settings()
    scratch: Path | None = None
    for line in sys.stdin.buffer:
        message = json.loads(line)
        if scratch is None:  # one scratch directory per worker, beside the store, reused by every attempt
            store_scratch = open_store(TaskSpec.from_json(message["spec"]).store_uri).scratch_dir()
            scratch = Path(store_scratch or tempfile.gettempdir()) / f"worker-{os.getpid()}"
        try:
            _run_one(message, args.state_dir, protocol, settings, scratch)
        except BrokenPipeError:  # the controller is gone; the outcome file holds what it needs
            break
        if message.get("exit_after"):
            break
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
