"""Entry point: `python -m ehrlab.services.result_store` (or `ehrlab-result-store`)."""

from __future__ import annotations

from collections.abc import Callable

from ehrlab.core.service import serve
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.grading.service import register as register_grading_store
from ehrlab.results.store import open_database
from ehrlab.services.result_store.servicer import ResultStoreServicer
from ehrlab.v1 import result_store_pb2_grpc


def setup(server: Server, settings: Settings) -> Callable[[], None]:
    db = open_database(settings.database_url, retry_deadline_s=settings.database_retry_s)
    server.add(result_store_pb2_grpc.add_ResultStoreServicer_to_server, ResultStoreServicer(db),
               "ehrlab.v1.ResultStore")
    register_grading_store(server, db)
    return db.close


def main() -> None:
    serve("result-store", setup)


if __name__ == "__main__":
    main()
