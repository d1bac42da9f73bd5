"""Entry point: `python -m ehrlab.services.grader` (or `ehrlab-grader`)."""

from __future__ import annotations

from ehrlab.core.service import serve
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.services.grader.servicer import GraderServicer
from ehrlab.v1 import grader_pb2_grpc


def setup(server: Server, settings: Settings) -> None:
    server.add(grader_pb2_grpc.add_GraderServicer_to_server, GraderServicer(), "ehrlab.v1.Grader")


def main() -> None:
    serve("grader", setup)


if __name__ == "__main__":
    main()
