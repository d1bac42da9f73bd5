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
import sys
from pathlib import Path

from ehrlab.core.reporting import GrpcReporter
from ehrlab.core.runner import TaskSpec, record_outcome, run_attempt
from ehrlab.core.settings import load_settings


def _run_one(message: dict, state_dir: Path, protocol: int) -> None:
    attempt_id = message["attempt_id"]
    spec = TaskSpec.from_json(message["spec"])
    (state_dir / f"{attempt_id}.run").write_text(json.dumps({"pid": os.getpid()}))
    log_path = state_dir / "logs" / f"{attempt_id}.log"
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        reporter = GrpcReporter(spec, load_settings()) if os.environ.get("EHRLAB_RESULT_STORE_ADDR") else None
        try:
            code, text = run_attempt(spec, reporter=reporter)
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


def main() -> None:
    parser = argparse.ArgumentParser(description="ehrlab local worker (started by the LocalLauncher)")
    parser.add_argument("--state-dir", required=True, type=Path)
    args = parser.parse_args()
    (args.state_dir / "logs").mkdir(parents=True, exist_ok=True)
    protocol = os.dup(1)  # the launcher reads outcomes here; fd 1 itself is pointed at task logs
    os.dup2(2, 1)
    for line in sys.stdin.buffer:
        message = json.loads(line)
        _run_one(message, args.state_dir, protocol)
        if message.get("exit_after"):
            break


if __name__ == "__main__":
    main()
