"""The `main` of every service process: flags, settings, server start, graceful stop.

Each service's `__main__` calls `serve(name, setup)`; `setup` registers servicers on the server and
may return a function to run on shutdown. With `--port 0` the OS picks free ports; the process then
prints one line `EHRLAB_READY <name> grpc=<port> metrics=<port>` that the embedded stack reads.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from ehrlab.core.serving import Server
from ehrlab.core.settings import SERVICE_PORTS, Settings, load_settings

METRICS_PORTS = {name: 9101 + i for i, name in enumerate(SERVICE_PORTS)}
Setup = Callable[[Server, Settings], "Callable[[], None] | None"]


def serve(name: str, setup: Setup, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"ehrlab-{name}", description=f"ehrlab {name} service")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=SERVICE_PORTS[name], help="gRPC port (0: any free port)")
    parser.add_argument("--metrics-port", type=int, default=METRICS_PORTS[name], help="/metrics port (0: any)")
    parser.add_argument("--config", help="settings YAML (default: $EHRLAB_CONFIG)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s")
    settings = load_settings(args.config)
    server = Server(name, settings, port=args.port, host=args.host, metrics_port=args.metrics_port)
    cleanup = setup(server, settings)
    server.start()
    print(f"EHRLAB_READY {name} grpc={server.port} metrics={server.metrics_port}", flush=True)
    server.wait(on_stop=[cleanup] if cleanup else [])
