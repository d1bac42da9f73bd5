"""Entry point: `python -m ehrlab.services.data_prep` (or `ehrlab-data-prep`)."""

from __future__ import annotations

from ehrlab.cohort.catalog import Catalog
from ehrlab.core.service import serve
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.services.data_prep.servicer import DataPrepServicer
from ehrlab.v1 import data_prep_pb2_grpc


def setup(server: Server, settings: Settings) -> None:
    catalog = Catalog(settings.store_uri, settings.home)
    server.add(data_prep_pb2_grpc.add_DataPrepServicer_to_server, DataPrepServicer(catalog), "ehrlab.v1.DataPrep")


def main() -> None:
    serve("data-prep", setup)


if __name__ == "__main__":
    main()
