"""Entry point: `python -m ehrlab.services.ehr_generator` (or `ehrlab-ehr-generator`)."""

from __future__ import annotations

from ehrlab.core.service import serve
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.services.ehr_generator.servicer import EhrGeneratorServicer
from ehrlab.v1 import ehr_generator_pb2_grpc


def setup(server: Server, settings: Settings) -> None:
    server.add(ehr_generator_pb2_grpc.add_EhrGeneratorServicer_to_server, EhrGeneratorServicer(settings),
               "ehrlab.v1.EhrGenerator")


def main() -> None:
    serve("ehr-generator", setup)


if __name__ == "__main__":
    main()
