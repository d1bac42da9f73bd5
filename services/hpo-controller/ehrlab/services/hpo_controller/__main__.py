"""Entry point: `python -m ehrlab.services.hpo_controller` (or `ehrlab-hpo-controller`)."""

from __future__ import annotations

from ehrlab.core.service import serve
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.services.hpo_controller.servicer import HpoControllerServicer
from ehrlab.v1 import hpo_pb2_grpc


def setup(server: Server, settings: Settings) -> None:
    server.add(hpo_pb2_grpc.add_HpoControllerServicer_to_server, HpoControllerServicer(), "ehrlab.v1.HpoController")


def main() -> None:
    serve("hpo-controller", setup)


if __name__ == "__main__":
    main()
