"""The gRPC API without the Python client: the generated stubs over a plain channel.

Any language with gRPC can do the same from protos/ehrlab/v1/*.proto (servers also answer reflection,
so `grpcurl -plaintext localhost:50051 list` works).

    .venv/bin/python examples/clients/raw_grpc.py localhost:50051
"""

from __future__ import annotations

import sys

import grpc
from google.protobuf import struct_pb2

from ehrlab.v1 import common_pb2, controller_pb2, controller_pb2_grpc


def main(address: str) -> int:
    spec = struct_pb2.Struct()
    spec.update({"name": "raw-grpc", "steps": {"hello": {"kind": "noop", "params": {"results": [{"hello": 1}]}}}})
    with grpc.insecure_channel(address) as channel:
        controller = controller_pb2_grpc.ControllerStub(channel)
        experiment = controller.SubmitExperiment(controller_pb2.SubmitExperimentRequest(
            request_id="raw-grpc-example", layers=[common_pb2.SpecLayer(source="inline", content=spec)]))
        for event in controller.WatchExperiment(controller_pb2.WatchExperimentRequest(id=experiment.id)):
            if event.HasField("experiment"):
                print(common_pb2.ExperimentState.Name(event.experiment.state), event.experiment.progress)
        try:
            controller.GetExperiment(controller_pb2.GetExperimentRequest(id="no-such-experiment"))
        except grpc.RpcError as error:  # every error has a status code and a one-line message
            print(error.code().name, error.details())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "localhost:50051"))
