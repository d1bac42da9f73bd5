"""gRPC servicer of the hpo-controller service."""

from __future__ import annotations

from ehrlab.v1 import hpo_pb2_grpc


class HpoControllerServicer(hpo_pb2_grpc.HpoControllerServicer):
    """Optuna studies whose trials run as controller tasks."""
