"""Daemons the test servers are made of: started, watched and killed by process id.

Each daemon runs under `setpriv --pdeathsig KILL`, so it dies with the thread that started it even
when the test process is killed without running its teardown (a timeout, a crashed worker): no
server outlives its tests. Start servers from a thread that lives as long as they should (pytest's
main thread does).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path


class ServerError(RuntimeError):
    """A test server did not start or did not answer as expected; the message names its log."""


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not installed (run ./scripts/install-system-deps.sh)")
    return path


class Daemon:
    """One long-running process in the foreground, its output appended to `log_path`."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                ["setpriv", "--pdeathsig", "KILL", "--", *self.argv],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ServerError(f"{self.name} exited with code {self.process.returncode}; see {self.log_path}:\n"
                              f"{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds (0: kill at once)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if grace <= 0 else signal.SIGTERM)
        try:
            process.wait(timeout=grace if grace > 0 else 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_until(check: Callable[[], bool], *, timeout: float, what: str,
               daemons: Sequence[Daemon] = (), interval: float = 0.05) -> None:
    """Polls `check` until true; fails early (with the log) if one of `daemons` exits."""
    deadline = time.monotonic() + timeout
    while True:
        for daemon in daemons:
            daemon.check_alive()
        if check():
            return
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {d.log_path}\n{d.log_tail()}" for d in daemons)
            raise ServerError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")
        time.sleep(interval)


def http_ok(url: str) -> bool:
    """True when `url` answers 200 (connection refused and errors: False)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def http_answers(url: str) -> bool:
    """True when anything answers HTTP at `url`, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
