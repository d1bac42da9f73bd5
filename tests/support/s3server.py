"""A real S3 server for tests: Ceph's radosgw on a private single-node cluster, all on 127.0.0.1.

The cluster is one monitor and one OSD keeping objects in memory (`memstore`), without cephx auth
between its daemons and with every pool at size 1. The S3 gateway in front of it checks request
signatures like any S3 service. Everything lives under one directory; `stop()` kills every daemon.
The gateway alone can be stopped and started again (`stop_gateway`, `start_gateway`, `gateway_down`)
while the cluster keeps the data: that is how the tests take S3 away in the middle of an operation.

Manual use: `.venv/bin/python -m tests.support.s3server` starts one and prints its endpoint and keys.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
from minio import Minio

from ehrlab.core.embedded.postgres import free_port
from tests.support.processes import Daemon, ServerError, http_answers, require_binary, wait_until

ACCESS_KEY = "EHRLABTESTACCESSKEY1"
SECRET_KEY = "ehrlab-test-secret-key-not-for-production"
GATEWAY_NAME = "client.rgw.gateway"

_CONFIG = """\
[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
mon initial members = a
public addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr1 = false
# no cephx inside the cluster; radosgw asks for a 'secure' connection to the monitor by default,
# which needs cephx, so every client speaks plain crc
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
# one copy of everything, few placement groups, no pool-size or disk-space health checks
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
# the monitor commits each change after this delay (default 1 s): radosgw creates its pools one
# command at a time, so this dominates start-up
paxos propose interval = 0.01
osd objectstore = memstore
memstore device bytes = {memstore_bytes}
run dir = {root}/run
admin socket = {root}/run/$name.asok
pid file = {root}/run/$name.pid
log file = {root}/log/$name.log
log to stderr = false
mon data = {root}/mon/$name
osd data = {root}/osd/$cluster-$id
keyring = {root}/keyring

[{gateway}]
rgw frontends = beast endpoint=127.0.0.1:{port}
rgw data = {root}/rgw
# with its metadata cache on, the gateway notifies every other gateway on each metadata change; one
# that was killed still counts for 30 s (the OSD's watch timeout), and bucket creation waits for it
rgw cache enabled = false
"""


class RadosGateway:
    """One private Ceph cluster with an S3 gateway at `endpoint` (127.0.0.1:port).

    Keys are fixed (`access_key`, `secret_key`); buckets are the tests' business. `start()` takes
    1 to 3 s on 2 cores; data is held in memory and lost at `stop()`.
    """

    def __init__(self, root: Path, *, port: int | None = None, memstore_bytes: int = 1 << 30) -> None:
        self.root = Path(root).absolute()
        self.port = port or free_port()
        self.memstore_bytes = memstore_bytes
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.config = self.root / "ceph.conf"
        logs = self.root / "log"
        self.monitor = Daemon("ceph-mon", ["ceph-mon", "-c", str(self.config), "-i", "a", "-f"], logs / "mon.out")
        self.osd = Daemon("ceph-osd", ["ceph-osd", "-c", str(self.config), "-i", "0", "-f"], logs / "osd.out")
        self.gateway = Daemon("radosgw", ["radosgw", "-c", str(self.config), "-n", GATEWAY_NAME, "-f"],
                              logs / "rgw.out")
        self.started_in: float | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def env(self) -> dict[str, str]:
        """Environment variables that give ehrlab (open_store) this server's credentials."""
        return {"EHRLAB_S3_ACCESS_KEY": self.access_key, "EHRLAB_S3_SECRET_KEY": self.secret_key}

    def client(self) -> Minio:
        """A minio client with the server's keys, for setting up and inspecting buckets directly."""
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False)

    def store_uri(self, bucket: str, prefix: str = "") -> str:
        path = f"/{prefix.strip('/')}" if prefix.strip("/") else ""
        return f"s3://{bucket}{path}?endpoint={self.endpoint}&secure=false"

    def _ceph(self, tool: str, *args: str, timeout: float = 60) -> str:
        try:
            done = subprocess.run([tool, "-c", str(self.config), *args], capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ServerError(f"{tool} {' '.join(args)} took over {timeout:.0f}s; logs in {self.root}/log") from None
        if done.returncode != 0:
            raise ServerError(f"{tool} {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def start(self, timeout: float = 60.0) -> None:
        for binary in ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool"):
            require_binary(binary)
        began = time.monotonic()
        atexit.register(self.stop)
        try:
            self._create_cluster()
            self.start_gateway(timeout=timeout)
            self._ceph("radosgw-admin", "user", "create", "--uid", "ehrlab-test", "--display-name", "ehrlab tests",
                       "--access-key", self.access_key, "--secret-key", self.secret_key, timeout=timeout)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began

    def _create_cluster(self) -> None:
        for sub in ("run", "log", "mon", "osd/ceph-0", "rgw"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        mon_port, fsid = free_port(), str(uuid.uuid4())
        self.config.write_text(_CONFIG.format(fsid=fsid, mon_port=mon_port, root=self.root, port=self.port,
                                              memstore_bytes=self.memstore_bytes, gateway=GATEWAY_NAME))
        monmap = self.root / "monmap"
        subprocess.run(["monmaptool", "--create", "--clobber", "--addv", "a", f"[v2:127.0.0.1:{mon_port}]",
                        "--fsid", fsid, str(monmap)], check=True, capture_output=True)
        self._ceph("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(monmap))
        self.monitor.start()
        osd_uuid = str(uuid.uuid4())
        self._ceph("ceph", "--connect-timeout", "30", "osd", "new", osd_uuid)
        self._ceph("ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", osd_uuid)
        self.osd.start()

    def start_gateway(self, timeout: float = 60.0) -> None:
        """Starts the S3 gateway (again) and waits until it answers HTTP."""
        if self.gateway.alive:
            return
        self.gateway.start()
        wait_until(lambda: http_answers(self.url + "/"), timeout=timeout, what=f"radosgw on {self.endpoint}",
                   daemons=[self.monitor, self.osd, self.gateway])

    def stop_gateway(self) -> None:
        """Kills the S3 gateway as a crash would; the cluster keeps the data."""
        self.gateway.stop(grace=0)

    @contextlib.contextmanager
    def gateway_down(self) -> Iterator[None]:
        """S3 is unreachable inside the block (connection refused) and back after it."""
        self.stop_gateway()
        try:
            yield
        finally:
            self.start_gateway()

    def bytes_moved(self) -> int:
        """Bytes the gateway and the OSD have read so far: grows while an upload or download is under way.

        (Uploads show as the OSD reading from the gateway, downloads as the gateway reading from the
        OSD; the gateway's own client sockets are not counted by the kernel's read_chars.)
        """
        return sum(psutil.Process(d.process.pid).io_counters().read_chars
                   for d in (self.gateway, self.osd) if d.process is not None and d.alive)

    def stop(self) -> None:
        """Kills every daemon of the cluster; the data goes with them."""
        for daemon in (self.gateway, self.osd, self.monitor):
            daemon.stop(grace=0)
        atexit.unregister(self.stop)

    def __enter__(self) -> RadosGateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Start a private S3 server (Ceph radosgw) on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--dir", type=Path, help="where the cluster lives (default: a new temporary directory)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # clean up on `kill` as on Ctrl-C
    with contextlib.ExitStack() as cleanup:
        root = args.dir or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="ehrlab-s3-")))
        serve(RadosGateway(root, port=args.port))


def serve(server: RadosGateway) -> None:
    with server:
        print(f"S3 endpoint  {server.url}  (ready in {server.started_in:.1f}s, data in {server.root})")
        print(f"export EHRLAB_S3_ACCESS_KEY={server.access_key}")
        print(f"export EHRLAB_S3_SECRET_KEY={server.secret_key}")
        print(f"artifact store URI: {server.store_uri('ehrlab')}")
        print("Ctrl-C stops it.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while server.gateway.alive:
                time.sleep(1)


if __name__ == "__main__":
    main()
