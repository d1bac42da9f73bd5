"""Entry point: `python -m ehrlab.services.hpo_controller` (or `ehrlab-hpo-controller`)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import REGISTRY

from ehrlab.core.errors import UnavailableError
from ehrlab.core.service import serve
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.hpo.metrics import TrialCounts
from ehrlab.hpo.runners import ControllerRunner
from ehrlab.hpo.scheduler import TrialScheduler
from ehrlab.hpo.studies import StudyManager
from ehrlab.services.hpo_controller.servicer import HpoControllerServicer
from ehrlab.v1 import hpo_pb2_grpc


def setup(server: Server, settings: Settings) -> Callable[[], None]:
    if not settings.database_url:
        raise UnavailableError("the hpo-controller needs a database: set EHRLAB_DATABASE_URL")
    from ehrlab.client import Client

    manager = StudyManager(settings.database_url)
    scheduler = TrialScheduler(manager, ControllerRunner(Client.connect()))
    server.add(hpo_pb2_grpc.add_HpoControllerServicer_to_server, HpoControllerServicer(manager, scheduler),
               "ehrlab.v1.HpoController")
    trial_counts = TrialCounts(manager)
    REGISTRY.register(trial_counts)
    scheduler.resume_all()

    def stop() -> None:
        REGISTRY.unregister(trial_counts)
        scheduler.close()
        manager.close()

    return stop


def main() -> None:
    serve("hpo-controller", setup)


if __name__ == "__main__":
    main()
