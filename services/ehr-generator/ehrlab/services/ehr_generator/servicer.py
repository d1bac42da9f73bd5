"""gRPC servicer of the ehr-generator service."""

from __future__ import annotations

from ehrlab.v1 import ehr_generator_pb2_grpc


class EhrGeneratorServicer(ehr_generator_pb2_grpc.EhrGeneratorServicer):
    """Synthetic EHR generation, evaluation and model description."""
