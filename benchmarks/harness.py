"""What every benchmark needs: the machine and its load, tables, percentiles, CPU time per process group,
and a private embedded stack.

Figures are measured, never asserted. The machine may be shared, so each figure is printed with the
1-minute load average taken around it: compare figures only when the load was low.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil
from prometheus_client.parser import text_string_to_metric_families

from ehrlab.core.embedded.stack import Stack


def machine() -> str:
    """Cores, memory, GPU and the load right now, in one line."""
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return (f"{os.cpu_count()} cores, {memory:.0f} GiB, {gpu}, Python {platform.python_version()}, "
            f"commit {commit()}; load average now {load():.2f}")


def commit() -> str:
    """The checked-out commit (with '+' when tracked files differ from it): which code a figure measured."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True)

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return "unknown"
    dirty = git("diff", "--quiet", "HEAD", "--", "libs", "services").returncode != 0
    return head.stdout.strip() + ("+" if dirty else "")


def load() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def table(rows: Sequence[Mapping[str, object]], title: str = "") -> str:
    """A plain-text table of dict rows (the keys of the first row are the columns)."""
    if not rows:
        return title
    columns = list(rows[0])
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [title] if title else []
    lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(r, widths, strict=True))
              for r in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).lstrip("-").isdigit()


# --- CPU time per process group ------------------------------------------------------------------

@dataclass
class ProcessGroup:
    """CPU time that counts for one role: a process itself, its descendants (reaped or alive), or both."""

    name: str
    pid: int
    part: Literal["self", "descendants", "all"] = "self"

    def cpu(self) -> float:
        try:
            process = psutil.Process(self.pid)
            times = process.cpu_times()
            total = 0.0
            if self.part in ("self", "all"):
                total += times.user + times.system
            if self.part in ("descendants", "all"):
                total += times.children_user + times.children_system  # children that ended
                for child in process.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        child_times = child.cpu_times()
                        total += child_times.user + child_times.system
            return total
        except psutil.Error:
            return 0.0


def postmaster_pid(data_dir: Path) -> int:
    """The PostgreSQL server's pid, from its postmaster.pid file."""
    return int((Path(data_dir) / "postmaster.pid").read_text().split()[0])


class CpuMeter:
    """CPU seconds each group used between `start()` and `stop()` (this process is the group 'benchmark')."""

    def __init__(self, groups: Sequence[ProcessGroup]) -> None:
        self.groups = [*groups, ProcessGroup("benchmark", os.getpid())]
        self._start: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self._start = {g.name: g.cpu() for g in self.groups}

    def stop(self) -> dict[str, float]:
        self.used = {g.name: g.cpu() - self._start[g.name] for g in self.groups}
        return self.used


def stack_groups(stack: Stack) -> list[ProcessGroup]:
    """Each service, the controller's task workers, and PostgreSQL with all its backends."""
    assert stack.postgres is not None
    groups = [ProcessGroup("postgres", postmaster_pid(stack.postgres.data_dir), "all")]
    for name, process in stack.processes.items():
        groups.append(ProcessGroup(name, process.pid))
        if name == "controller":
            groups.append(ProcessGroup("workers", process.pid, "descendants"))
    return groups


# --- a service's own metrics ------------------------------------------------------------------------

def scrape(metrics_port: int) -> dict[str, float]:
    """A service's /metrics now: sample name -> value, summed over label sets."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] += sample.value
    return dict(values)


# --- a private embedded stack --------------------------------------------------------------------

@contextmanager
def embedded_stack(services: Sequence[str] = ("result-store", "controller"), *, cpus: float | None = None,
                   env: Mapping[str, str] | None = None, keep: bool = False) -> Iterator[Stack]:
    """A stack in a new temporary home, as `ehrlab up` starts it (durable PostgreSQL), stopped afterwards."""
    # stopped by `timeout` or Ctrl-C, the benchmark still takes its stack down
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    home = Path(tempfile.mkdtemp(prefix="ehrlab-bench-")) / ".ehrlab"
    extra = dict(env or {})
    if cpus is not None:
        extra["EHRLAB_LOCAL_CPUS"] = str(cpus)
    stack = Stack(home, services=services, extra_env=extra).up(timeout=180)
    try:
        yield stack
    finally:
        stack.down()
        if not keep:
            shutil.rmtree(home.parent, ignore_errors=True)


class Stopwatch:
    """Wall time and the load average around a measured block."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = time.perf_counter()
        self.load_before = self.load_after = 0.0

    @contextmanager
    def measure(self) -> Iterator[Stopwatch]:
        self.load_before = load()
        self._start = time.perf_counter()
        try:
            yield self
        finally:
            self.seconds = time.perf_counter() - self._start
            self.load_after = load()

    def seconds_so_far(self) -> float:
        return time.perf_counter() - self._start

    @property
    def load(self) -> str:
        return f"{self.load_before:.1f}->{self.load_after:.1f}"


# --- profiles ------------------------------------------------------------------------------------

@contextmanager
def py_spy(pid: int, output: Path, *, subprocesses: bool = False, rate: int = 50) -> Iterator[None]:
    """Samples `pid` (and its subprocesses) with py-spy while the block runs; raw stacks go to `output`.

    Only samples holding the GIL count (`--gil`): Python at work, not threads blocked on I/O."""
    output.parent.mkdir(parents=True, exist_ok=True)
    recorder = subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), "--format", "raw",
         "--output", str(output), "--rate", str(rate), "--nolineno", "--nonblocking", "--gil",
         *(["--subprocesses"] if subprocesses else [])],
        stdout=subprocess.DEVNULL, stderr=open(output.with_suffix(".log"), "wb"))  # noqa: SIM115 (py-spy's)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        recorder.wait(timeout=120)
        if not output.exists():
            raise RuntimeError(f"py-spy wrote no profile; see {output.with_suffix('.log')}")


def hot_functions(raw: Path, top: int = 12) -> list[dict[str, object]]:
    """Per process ('main', and 'worker' for task workers), the `top` functions with the most samples
    in a raw py-spy file: own time (leaf) and inclusive time, in % of that process's samples."""
    own: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[tuple[str, str]] = Counter()
    samples: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        process = "main"
        while frames and frames[0].startswith("process "):  # with --subprocesses: the chain of parents first
            process = "worker" if "ehrlab.engine.worker" in frames[0] else process
            frames = frames[1:]
        if not frames:
            continue
        weight = int(count)
        samples[process] += weight
        own[process, frames[-1]] += weight
        for frame in set(frames):
            inclusive[process, frame] += weight
    rows: list[dict[str, object]] = []
    for process in sorted(samples):
        mine = Counter({function: n for (name, function), n in own.items() if name == process})
        rows += [{"process": process, "function": function, "own %": 100 * n / samples[process],
                  "incl %": 100 * inclusive[process, function] / samples[process]}
                 for function, n in mine.most_common(top)]
    return rows
