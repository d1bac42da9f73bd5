"""gRPC servicer of the trainer service."""

from __future__ import annotations

from ehrlab.v1 import trainer_pb2_grpc


class TrainerServicer(trainer_pb2_grpc.TrainerServicer):
    """The model catalog and training task kinds."""
