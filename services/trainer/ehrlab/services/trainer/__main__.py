"""Entry point: `python -m ehrlab.services.trainer` (or `ehrlab-trainer`)."""

from __future__ import annotations

from ehrlab.core.service import serve
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.services.trainer.servicer import TrainerServicer
from ehrlab.v1 import trainer_pb2_grpc


def setup(server: Server, settings: Settings) -> None:
    server.add(trainer_pb2_grpc.add_TrainerServicer_to_server, TrainerServicer(), "ehrlab.v1.Trainer")


def main() -> None:
    serve("trainer", setup)


if __name__ == "__main__":
    main()
