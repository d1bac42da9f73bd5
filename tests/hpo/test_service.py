"""The hpo-controller over real gRPC: status codes, field paths, restart mid-study, optuna-dashboard."""

from __future__ import annotations

import json
import wsgiref.util
from collections.abc import Callable, Iterator
from io import BytesIO

import grpc
import pytest

from ehrlab.core.channels import open_channel
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.core.wire import from_struct
from ehrlab.hpo.api import definition_to_request
from ehrlab.hpo.storage import optuna_url
from ehrlab.hpo.studies import StudyManager, parse_definition
from ehrlab.services.hpo_controller.servicer import HpoControllerServicer
from ehrlab.v1 import hpo_pb2, hpo_pb2_grpc

SPACE = {"lr": {"low": 1e-5, "high": 1e-1, "log": True}, "layers": {"low": 1, "high": 4},
         "opt": ["adamw", "lion"], "beta": {"low": 0.8, "high": 0.99, "when": {"opt": "lion"}}}


class Service:
    """An hpo-controller on a free port, with a stub; `restart()` replaces it by a fresh process state."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._start()

    def _start(self) -> None:
        self.manager = StudyManager(self.database_url)
        self.server = Server("hpo-controller", Settings(), port=0, host="127.0.0.1")
        self.server.add(hpo_pb2_grpc.add_HpoControllerServicer_to_server, HpoControllerServicer(self.manager),
                        "ehrlab.v1.HpoController")
        self.server.start()
        self.channel = open_channel(f"127.0.0.1:{self.server.port}")
        self.stub = hpo_pb2_grpc.HpoControllerStub(self.channel)

    def stop(self) -> None:
        self.channel.close()
        self.server.stop(0)
        self.manager.close()

    def restart(self) -> None:
        self.stop()
        self._start()


@pytest.fixture
def service(hpo_database: str) -> Iterator[Service]:
    running = Service(hpo_database)
    yield running
    running.stop()


def create(stub: hpo_pb2_grpc.HpoControllerStub, name: str, **overrides: object) -> hpo_pb2.Study:
    data = {"name": name, "metric": "acc", "direction": "maximize", "space": SPACE, "n_trials": 20, **overrides}
    return stub.CreateStudy(definition_to_request(parse_definition(data)))


def rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_the_api_end_to_end(service: Service, study_name: str) -> None:
    study = create(service.stub, study_name, pruner={"name": "hyperband", "min_resource": 1, "max_resource": 4,
                                                     "patience": 1})
    assert study.n_trials == 20 and from_struct(study.search_space)["layers"]["type"] == "int"
    asked = service.stub.Ask(hpo_pb2.AskRequest(study=study_name, n=5, worker="w1")).trials
    assert [t.number for t in asked] == [0, 1, 2, 3, 4]
    for trial in asked:
        params = from_struct(trial.params)
        assert isinstance(params["layers"], int) and ("beta" in params) == (params["opt"] == "lion")
        reply = service.stub.ReportIntermediate(hpo_pb2.ReportIntermediateRequest(
            study=study_name, trial=trial.number, step=1, value=params["layers"] / 4))
        assert reply.prune in (True, False)
        service.stub.Tell(hpo_pb2.TellRequest(study=study_name, trial=trial.number,
                                              state=hpo_pb2.TRIAL_STATE_COMPLETE, value=params["layers"] / 4))
    got = service.stub.GetStudy(hpo_pb2.GetStudyRequest(name=study_name, include_trials=True))
    assert got.counts.complete == 5 and len(got.trials) == 5
    assert got.trials[0].attrs["worker"] == "w1" and got.trials[0].intermediate[0].step == 1
    top = service.stub.TopK(hpo_pb2.TopKRequest(study=study_name, k=2)).trials
    assert top[0].value == got.best.value == max(t.value for t in got.trials)
    names = [s.name for s in service.stub.ListStudies(hpo_pb2.ListStudiesRequest()).studies]
    assert study_name in names


def test_errors_map_to_status_codes_with_the_field(service: Service, study_name: str) -> None:
    create(service.stub, study_name)
    error = rpc_error(lambda: create(service.stub, study_name, direction="minimize"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and "direction" in error.details()
    request = definition_to_request(parse_definition({"name": "x", "metric": "m", "space": SPACE}))
    request.pruner["name"] = "bogus"
    error = rpc_error(lambda: service.stub.CreateStudy(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "unknown pruner" in error.details()
    assert dict(error.trailing_metadata())["ehrlab-field"] == "pruner.name"
    untyped = hpo_pb2.CreateStudyRequest(name="y", metric="m", direction=hpo_pb2.DIRECTION_MAXIMIZE)
    untyped.search_space.update({"lr": {"low": 1, "high": 4}})
    error = rpc_error(lambda: service.stub.CreateStudy(untyped))
    assert dict(error.trailing_metadata())["ehrlab-field"] == "space.lr.type"
    error = rpc_error(lambda: service.stub.Ask(hpo_pb2.AskRequest(study="missing", n=1)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    (trial,) = service.stub.Ask(hpo_pb2.AskRequest(study=study_name, n=1)).trials
    service.stub.Tell(hpo_pb2.TellRequest(study=study_name, trial=trial.number, state=hpo_pb2.TRIAL_STATE_FAILED,
                                          error="boom"))
    error = rpc_error(lambda: service.stub.ReportIntermediate(hpo_pb2.ReportIntermediateRequest(
        study=study_name, trial=trial.number, step=1, value=0.0)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_the_service_restarts_mid_study_and_carries_on(service: Service, study_name: str) -> None:
    create(service.stub, study_name, n_trials=10)
    first = service.stub.Ask(hpo_pb2.AskRequest(study=study_name, n=4)).trials
    for trial in first[:2]:
        service.stub.Tell(hpo_pb2.TellRequest(study=study_name, trial=trial.number,
                                              state=hpo_pb2.TRIAL_STATE_COMPLETE, value=0.5))
    service.restart()
    study = service.stub.GetStudy(hpo_pb2.GetStudyRequest(name=study_name))
    assert (study.counts.complete, study.counts.running, study.counts.budgeted) == (2, 2, 4)
    for trial in first[2:]:  # workers that outlived the restart finish their trials
        service.stub.Tell(hpo_pb2.TellRequest(study=study_name, trial=trial.number,
                                              state=hpo_pb2.TRIAL_STATE_COMPLETE, value=0.7))
    rest = service.stub.Ask(hpo_pb2.AskRequest(study=study_name, n=10)).trials
    assert [t.number for t in rest] == [4, 5, 6, 7, 8, 9]  # the budget of 10 holds across the restart
    assert create(service.stub, study_name, n_trials=10).counts.complete == 4  # re-creating resumes


def _get(app: Callable, path: str) -> tuple[str, bytes]:
    environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": BytesIO()}
    wsgiref.util.setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc=None: status.append(s)))
    return status[0], body


def test_optuna_dashboard_opens_the_studies_unchanged(service: Service, study_name: str) -> None:
    from optuna_dashboard import wsgi

    create(service.stub, study_name)
    for trial in service.stub.Ask(hpo_pb2.AskRequest(study=study_name, n=3)).trials:
        service.stub.Tell(hpo_pb2.TellRequest(study=study_name, trial=trial.number,
                                              state=hpo_pb2.TRIAL_STATE_COMPLETE, value=0.25))
    app = wsgi(optuna_url(service.database_url))
    status, body = _get(app, "/api/studies")
    assert status.startswith("200")
    studies = {s["study_name"]: s for s in json.loads(body)["study_summaries"]}
    assert study_name in studies
    status, body = _get(app, f"/api/studies/{studies[study_name]['study_id']}")
    assert status.startswith("200")
    trials = json.loads(body)["trials"]
    assert len(trials) == 3 and all(t["state"] == "Complete" for t in trials)
