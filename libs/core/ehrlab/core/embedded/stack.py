"""The embedded stack: PostgreSQL and the seven services as local processes (`ehrlab up` / `down`).

Everything lives in one home directory (default `./.ehrlab`): `pg/` (database), `store/` (artifacts),
`attempts/` (local task attempts and their logs), `logs/<service>.log`, and `stack.json`, which
records ports and process ids so `ehrlab down`, the CLI and clients in other processes find it.
Services run in their own sessions: they outlive the command that started them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ehrlab.core.embedded.postgres import EmbeddedPostgres, free_port
from ehrlab.core.errors import EhrlabError, UnavailableError
from ehrlab.core.settings import SERVICE_PORTS

# result-store first: the controller reports to it from its first moment
START_ORDER = ("result-store", "controller", "data-prep", "trainer", "hpo-controller", "ehr-generator", "grader")
STATE_FILE = "stack.json"


def _module(service: str) -> str:
    return f"ehrlab.services.{service.replace('-', '_')}"


@dataclass
class ServiceProcess:
    name: str
    pid: int
    grpc: int
    metrics: int
    create_time: float

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc}"

    def alive(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            return process.status() != psutil.STATUS_ZOMBIE and abs(process.create_time() - self.create_time) < 1
        except psutil.Error:
            return False


class Stack:
    def __init__(self, home: str | Path = ".ehrlab", *, services: Iterable[str] = START_ORDER, durable: bool = True,
                 extra_env: dict[str, str] | None = None, fixed_ports: bool = False) -> None:
        self.home = Path(home).absolute()
        self.services = [s for s in START_ORDER if s in set(services)]
        self.durable = durable
        self.extra_env = dict(extra_env or {})
        self.fixed_ports = fixed_ports
        self.postgres: EmbeddedPostgres | None = None
        self.processes: dict[str, ServiceProcess] = {}

    # --- addresses and environment ---------------------------------------------------------------

    @property
    def database_url(self) -> str:
        assert self.postgres is not None
        return self.postgres.url

    def addresses(self) -> dict[str, str]:
        return {name: p.address for name, p in self.processes.items()}

    def env(self) -> dict[str, str]:
        """Environment for any process that should use this stack (services, CLI, clients, tests)."""
        env = {"EHRLAB_HOME": str(self.home), "EHRLAB_DATABASE_URL": self.database_url,
               "EHRLAB_ARTIFACT_STORE": str(self.home / "store"), **self.extra_env}
        for name, process in self.processes.items():
            env[f"EHRLAB_{name.upper().replace('-', '_')}_ADDR"] = process.address
        return env

    def client(self):
        from ehrlab.client import Client

        return Client(self.addresses(), token=self.extra_env.get("EHRLAB_TOKEN", ""))

    # --- lifecycle -------------------------------------------------------------------------------

    def up(self, timeout: float = 90.0) -> Stack:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        existing = Stack.load(self.home)
        if existing is not None and existing.running():
            raise EhrlabError(f"a stack is already running in {self.home} (`ehrlab down` stops it)")
        self.postgres = EmbeddedPostgres(self.home / "pg", durable=self.durable)
        self.postgres.start()
        for attempt in range(3):  # free ports are picked before the services bind them: another may be quicker
            self.processes = {name: ServiceProcess(name, 0, *self._ports(name, fixed=attempt == 0), 0.0)
                              for name in self.services}
            try:
                for name in self.services:
                    self._start(name)
                    if name == "result-store":  # the others talk to it as they start
                        self._wait_healthy([name], timeout)
                self._wait_healthy(self.services, timeout)
                break
            except UnavailableError as exc:
                self._stop_services()
                if attempt == 2 or ("already in use" not in str(exc) and "cannot listen" not in str(exc)):
                    self.down()
                    raise
            except Exception:
                self.down()
                raise
        self._save()
        return self

    def _ports(self, name: str, *, fixed: bool) -> tuple[int, int]:
        """(gRPC, metrics) ports: the well-known ones when asked for and free, else any free ones."""
        if fixed and self.fixed_ports and _free(SERVICE_PORTS[name]):
            return SERVICE_PORTS[name], 9101 + START_ORDER.index(name)
        return free_port(), free_port()

    def _start(self, name: str) -> None:
        process = self.processes[name]
        env = {**os.environ, **self.env(), "PYTHONUNBUFFERED": "1"}
        log = open(self.home / "logs" / f"{name}.log", "ab")  # noqa: SIM115 (the child keeps it open)
        popen = subprocess.Popen(
            [sys.executable, "-m", _module(name), "--host", "127.0.0.1", "--port", str(process.grpc),
             "--metrics-port", str(process.metrics)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.home.parent,
            start_new_session=True)
        log.close()
        process.pid = popen.pid
        process.create_time = psutil.Process(popen.pid).create_time()

    def _wait_healthy(self, names: Iterable[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            process = self.processes[name]
            with grpc.insecure_channel(process.address) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                while True:
                    if not process.alive():
                        raise UnavailableError(f"{name} exited while starting:\n{self.log_tail(name)}")
                    try:
                        reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            break
                    except grpc.RpcError:
                        pass
                    if time.monotonic() > deadline:
                        raise UnavailableError(f"{name} did not become healthy in {timeout:g}s:\n{self.log_tail(name)}")
                    time.sleep(0.1)

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.home / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stops one service abruptly (fault drills)."""
        process = self.processes[name]
        try:
            os.kill(process.pid, sig)
        except ProcessLookupError:
            return
        _wait_gone(process, 10.0)

    def restart(self, name: str, timeout: float = 60.0) -> None:
        if self.processes[name].alive():
            self.kill(name, signal.SIGTERM)
        self._start(name)
        self._wait_healthy([name], timeout)
        self._save()

    def running(self) -> bool:
        return any(p.alive() for p in self.processes.values())

    def down(self, timeout: float = 20.0) -> None:
        self._stop_services(timeout)
        _stop_workers(self.home / "attempts")
        if self.postgres is not None:
            self.postgres.stop()
        (self.home / STATE_FILE).unlink(missing_ok=True)

    def _stop_services(self, timeout: float = 20.0) -> None:
        alive = [p for p in self.processes.values() if p.alive()]
        for process in alive:
            try:
                os.kill(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in alive:
            if not _wait_gone(process, timeout):
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    # --- state file ------------------------------------------------------------------------------

    def _save(self) -> None:
        state = {"home": str(self.home), "durable": self.durable,
                 "postgres": {"port": self.postgres.port if self.postgres else None},
                 "services": {n: {"pid": p.pid, "grpc": p.grpc, "metrics": p.metrics, "create_time": p.create_time}
                              for n, p in self.processes.items()}}
        (self.home / STATE_FILE).write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, home: str | Path = ".ehrlab") -> Stack | None:
        home = Path(home).absolute()
        try:
            state = json.loads((home / STATE_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None
        stack = cls(home, services=state["services"], durable=state.get("durable", True))
        if state["postgres"]["port"]:
            stack.postgres = EmbeddedPostgres(home / "pg", state["postgres"]["port"], durable=stack.durable)
        stack.processes = {n: ServiceProcess(n, s["pid"], s["grpc"], s["metrics"], s["create_time"])
                           for n, s in state["services"].items()}
        return stack


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _wait_gone(process: ServiceProcess, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process.alive():
        if time.monotonic() > deadline:
            return False
        try:
            os.waitpid(process.pid, os.WNOHANG)  # reap it if it is our child
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return True


def _stop_workers(attempts_dir: Path) -> None:
    """Local task workers outlive the controller on purpose (a restarted one adopts them); `down` ends them."""
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "ehrlab.engine.worker" in cmdline and str(attempts_dir) in cmdline:
            try:
                proc.kill()
            except psutil.Error:
                pass
