"""Entry point: `python -m ehrlab.services.controller` (or `ehrlab-controller`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ehrlab.core.artifacts import open_store
from ehrlab.core.channels import open_channel
from ehrlab.core.service import serve
from ehrlab.core.serving import Server
from ehrlab.core.settings import SERVICE_PORTS, Settings
from ehrlab.engine.forwarding import Forwarder
from ehrlab.engine.launchers import Launcher
from ehrlab.engine.reconciler import Engine
from ehrlab.engine.store import open_database
from ehrlab.services.controller.servicer import ControllerServicer
from ehrlab.v1 import controller_pb2_grpc


class _LazyChannels(dict):
    """Channels to other services, opened on first use (planners that need data ask for them)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def __missing__(self, service: str) -> object:
        if service not in SERVICE_PORTS:
            raise KeyError(service)
        channel = open_channel(self.settings.address(service), token=self.settings.token, ca=self.settings.tls.ca)
        self[service] = channel
        return channel


def make_launcher(settings: Settings, *, own_address: str, on_change: Callable[[], None]) -> tuple[Launcher, str]:
    if settings.launcher == "kubernetes":
        from ehrlab.engine.launchers.kubernetes import KubernetesLauncher

        return KubernetesLauncher(settings, on_change=on_change), "kubernetes"
    from ehrlab.engine.launchers.local import LocalLauncher

    env = {f"EHRLAB_{name.upper().replace('-', '_')}_ADDR": settings.address(name) for name in SERVICE_PORTS}
    env["EHRLAB_CONTROLLER_ADDR"] = own_address
    env["EHRLAB_ARTIFACT_STORE"] = settings.store_uri
    return LocalLauncher(settings.local, Path(settings.home, "attempts"), env=env, on_change=on_change), "local"


def setup(server: Server, settings: Settings) -> Callable[[], None]:
    db = open_database(settings.database_url, retry_deadline_s=settings.database_retry_s)
    artifacts = open_store(settings.store_uri)
    wake: list[Callable[[], None]] = []
    launcher, name = make_launcher(settings, own_address=f"127.0.0.1:{server.port}",
                                   on_change=lambda: wake[0]() if wake else None)
    engine = Engine(db, artifacts, launcher, launcher_name=name, idle_interval_s=0.5)
    wake.append(engine.wake)
    channels = _LazyChannels(settings)
    forwarder = Forwarder(engine, artifacts, channels["result-store"], Path(settings.home).absolute().parent)
    engine.forwarder = forwarder
    forwarder.start()
    engine.start()
    server.add(controller_pb2_grpc.add_ControllerServicer_to_server, ControllerServicer(engine, channels),
               "ehrlab.v1.Controller")

    def stop() -> None:
        engine.stop()
        forwarder.stop()
        db.close()

    return stop


def main() -> None:
    os.environ.setdefault("EHRLAB_HOME", ".ehrlab")
    serve("controller", setup)


if __name__ == "__main__":
    main()
