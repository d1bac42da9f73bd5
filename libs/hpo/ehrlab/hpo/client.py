"""The hpo-controller from Python: create or resume studies, follow them, read the best trials.

    from ehrlab.client import Client
    from ehrlab.hpo.client import HpoClient

    hpo = HpoClient(Client.connect())
    hpo.create(definition)                  # a StudyDefinition (ehrlab.hpo.studies / ehrlab.hpo.spec)
    study = hpo.wait(definition.name)       # until no trial runs and none will start
    best = hpo.top_k(definition.name, 5)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ehrlab.client import rpc_errors
from ehrlab.core.wire import from_struct
from ehrlab.hpo.api import definition_to_request, trial_from_proto
from ehrlab.hpo.studies import StudyDefinition, TrialInfo
from ehrlab.v1 import hpo_pb2


class HpoClient:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.stub = client.stub("hpo-controller")

    def create(self, definition: StudyDefinition) -> hpo_pb2.Study:
        """Creates the study, or resumes the one with this name and the same definition."""
        with rpc_errors("create study"):
            return self.stub.CreateStudy(definition_to_request(definition), timeout=120)

    def get(self, name: str, *, trials: bool = False) -> hpo_pb2.Study:
        with rpc_errors("get study"):
            return self.stub.GetStudy(hpo_pb2.GetStudyRequest(name=name, include_trials=trials), timeout=60)

    def definition(self, name: str) -> StudyDefinition:
        return StudyDefinition.model_validate(from_struct(self.get(name).definition))

    def trials(self, name: str) -> list[TrialInfo]:
        return [trial_from_proto(t) for t in self.get(name, trials=True).trials]

    def top_k(self, name: str, k: int) -> list[TrialInfo]:
        with rpc_errors("top k"):
            reply = self.stub.TopK(hpo_pb2.TopKRequest(study=name, k=k), timeout=60)
        return [trial_from_proto(t) for t in reply.trials]

    def list(self) -> list[hpo_pb2.Study]:
        with rpc_errors("list studies"):
            return list(self.stub.ListStudies(hpo_pb2.ListStudiesRequest(), timeout=60).studies)

    def wait(self, name: str, *, progress: Callable[[hpo_pb2.Study], None] | None = None, poll_s: float = 1.0,
             timeout: float | None = None) -> hpo_pb2.Study:
        """Polls the study until it is finished; `progress` sees each new state."""
        start, last = time.monotonic(), None
        while True:
            study = self.get(name)
            state = (study.counts.SerializeToString(), study.finished)
            if progress is not None and state != last:
                progress(study)
            last = state
            if study.finished:
                return study
            if timeout is not None and time.monotonic() - start > timeout:
                raise TimeoutError(f"study {name} still running after {timeout:g}s")
            time.sleep(poll_s)
