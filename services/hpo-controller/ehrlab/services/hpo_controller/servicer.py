"""gRPC servicer of the hpo-controller: adapts `ehrlab.hpo.studies.StudyManager` to the API."""

from __future__ import annotations

from typing import Any

import grpc

from ehrlab.core.errors import SpecError
from ehrlab.hpo.api import STATE_FROM_PROTO, definition_from_request, study_to_proto, trial_to_proto
from ehrlab.hpo.scheduler import TrialScheduler
from ehrlab.hpo.studies import StudyManager, parse_definition
from ehrlab.v1 import hpo_pb2, hpo_pb2_grpc


class HpoControllerServicer(hpo_pb2_grpc.HpoControllerServicer):
    """Studies over Optuna in PostgreSQL; objective studies run their trials through the controller."""

    def __init__(self, manager: StudyManager, scheduler: TrialScheduler | None = None) -> None:
        self.manager = manager
        self.scheduler = scheduler

    def _study(self, name: str, *, trials: bool = False) -> hpo_pb2.Study:
        summary = self.manager.summary(name, trials=trials)
        finished, error = self.scheduler.status(name) if self.scheduler else (False, "")
        return study_to_proto(summary, finished=finished, error=error)

    def CreateStudy(self, request: hpo_pb2.CreateStudyRequest, context: grpc.ServicerContext) -> Any:
        definition = parse_definition(definition_from_request(request))
        self.manager.create(definition)
        if definition.objective is not None:
            if self.scheduler is None:
                raise SpecError("this hpo-controller runs no trials itself (no controller configured): "
                                "create the study without an objective and drive it with Ask/Tell",
                                path="objective")
            self.scheduler.start(definition.name, timeout_s=definition.timeout_s)
        return self._study(definition.name)

    def Ask(self, request: hpo_pb2.AskRequest, context: grpc.ServicerContext) -> Any:
        trials = self.manager.ask(request.study, request.n or 1, worker=request.worker)
        return hpo_pb2.AskResponse(trials=[trial_to_proto(t) for t in trials])

    def Tell(self, request: hpo_pb2.TellRequest, context: grpc.ServicerContext) -> Any:
        if request.state not in STATE_FROM_PROTO:
            raise SpecError("state must be COMPLETE, PRUNED or FAILED", path="state")
        trial = self.manager.tell(request.study, request.trial, STATE_FROM_PROTO[request.state],
                                  request.value if request.HasField("value") else None,
                                  error=request.error, retry=request.retry)
        return trial_to_proto(trial)

    def ReportIntermediate(self, request: hpo_pb2.ReportIntermediateRequest, context: grpc.ServicerContext) -> Any:
        prune = self.manager.report(request.study, request.trial, request.step, request.value)
        return hpo_pb2.ReportIntermediateResponse(prune=prune)

    def Heartbeat(self, request: hpo_pb2.HeartbeatRequest, context: grpc.ServicerContext) -> Any:
        self.manager.heartbeat(request.study, request.trial)
        return hpo_pb2.HeartbeatResponse()

    def GetStudy(self, request: hpo_pb2.GetStudyRequest, context: grpc.ServicerContext) -> Any:
        return self._study(request.name, trials=request.include_trials)

    def ListStudies(self, request: hpo_pb2.ListStudiesRequest, context: grpc.ServicerContext) -> Any:
        return hpo_pb2.ListStudiesResponse(studies=[self._study(name) for name in self.manager.ehrlab_names()])

    def TopK(self, request: hpo_pb2.TopKRequest, context: grpc.ServicerContext) -> Any:
        trials = self.manager.top_k(request.study, request.k or 1)
        return hpo_pb2.TopKResponse(trials=[trial_to_proto(t) for t in trials])
