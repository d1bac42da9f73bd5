"""gRPC servicer of the grader service."""

from __future__ import annotations

from ehrlab.v1 import grader_pb2_grpc


class GraderServicer(grader_pb2_grpc.GraderServicer):
    """Note generation and rubric grading through model backends."""
