"""gRPC servicer of the data-prep service."""

from __future__ import annotations

from ehrlab.v1 import data_prep_pb2_grpc


class DataPrepServicer(data_prep_pb2_grpc.DataPrepServicer):
    """The dataset catalog and cohort task kinds."""
