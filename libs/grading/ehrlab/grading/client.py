"""A client of the GradingStore service (in the result-store process) that speaks the grading model.

Tasks, the planner and the CLI all go through it; no one but the result-store touches the tables.
Calls wait for the server to be ready (a restarting result-store delays a task, it does not fail
it), and gRPC errors come back as the platform's errors, the field path of a bad request included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import grpc

from ehrlab.core.channels import open_channel
from ehrlab.core.errors import (
    ConflictError,
    EhrlabError,
    FailedPreconditionError,
    NotFoundError,
    SpecError,
    UnavailableError,
)
from ehrlab.core.settings import Settings, load_settings
from ehrlab.core.wire import to_struct
from ehrlab.grading import wire
from ehrlab.grading.model import (
    Case,
    CriterionGrade,
    ErrorRecord,
    Experiment,
    ExperimentDefinition,
    GradeKey,
    GradeResult,
    Model,
    ModelPair,
    ModelSpec,
    NoteKey,
    NoteResult,
    StoredCase,
)
from ehrlab.v1 import common_pb2, grading_pb2, grading_pb2_grpc

T = TypeVar("T")
CALL_TIMEOUT_S = 60.0
_ERRORS: dict[grpc.StatusCode, type[EhrlabError]] = {
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: ConflictError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: UnavailableError,
}


def platform_error(exc: grpc.RpcError) -> EhrlabError:
    """A gRPC error as the platform error the server raised (INVALID_ARGUMENT keeps its field path)."""
    code = exc.code()
    details = exc.details() or str(code)
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        trailers = dict(exc.trailing_metadata() or ())
        message = details
        for prefix in (trailers.get("ehrlab-source", ""), trailers.get("ehrlab-field", "")):
            message = message.removeprefix(f"{prefix}: ") if prefix else message
        return SpecError(message, path=trailers.get("ehrlab-field", ""), source=trailers.get("ehrlab-source", ""))
    return _ERRORS.get(code, EhrlabError)(details)


class GradingClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.stub = grading_pb2_grpc.GradingStoreStub(channel)

    @classmethod
    def connect(cls, address: str = "", settings: Settings | None = None) -> GradingClient:
        """A client of the result-store at `address`, or at the address settings give it."""
        settings = settings or load_settings()
        return cls(open_channel(address or settings.address("result-store"), token=settings.token,
                                ca=settings.tls.ca))

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> GradingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Callable[..., T], request: Any) -> T:
        try:
            return method(request, timeout=CALL_TIMEOUT_S, wait_for_ready=True)
        except grpc.RpcError as exc:
            raise platform_error(exc) from None

    # ---- cases ---------------------------------------------------------------------------------------------
    def put_cases(self, cases: Sequence[Case]) -> list[StoredCase]:
        request = grading_pb2.PutCasesRequest(cases=[wire.grading_case(case) for case in cases])
        return [wire.stored_case_from(c) for c in self._call(self.stub.PutCases, request).cases]

    def get_cases(self, ids: Sequence[int] = (), names: Sequence[str] = ()) -> list[StoredCase]:
        response = self._call(self.stub.GetCases, grading_pb2.GetCasesRequest(ids=list(ids), names=list(names)))
        return [wire.stored_case_from(c) for c in response.cases]

    def list_cases(self) -> Iterator[grading_pb2.CaseSummary]:
        token = ""
        while True:
            response = self._call(self.stub.ListCases, grading_pb2.ListCasesRequest(
                page=common_pb2.PageRequest(page_token=token)))
            yield from response.cases
            token = response.next_page_token
            if not token:
                return

    def eligible_cases(self) -> list[grading_pb2.CaseSummary]:
        return list(self._call(self.stub.EligibleCases, grading_pb2.EligibleCasesRequest()).cases)

    # ---- models ----------------------------------------------------------------------------------------------
    def add_model(self, spec: ModelSpec) -> Model:
        return wire.model_from(self._call(self.stub.AddModel, grading_pb2.AddModelRequest(model=wire.model_ref(spec))))

    def list_models(self) -> list[Model]:
        return [wire.model_from(m) for m in self._call(self.stub.ListModels, grading_pb2.ListModelsRequest()).models]

    # ---- experiments -------------------------------------------------------------------------------------------
    def create_experiment(self, definition: ExperimentDefinition) -> Experiment:
        message = grading_pb2.GradingExperiment(**definition.model_dump())
        return wire.experiment_from(self._call(self.stub.CreateExperiment,
                                               grading_pb2.CreateExperimentRequest(experiment=message)))

    def get_experiment(self, experiment: str | int) -> grading_pb2.ExperimentDetail:
        return self._call(self.stub.GetExperiment, grading_pb2.GetGradingExperimentRequest(experiment=str(experiment)))

    def list_experiments(self) -> list[Experiment]:
        response = self._call(self.stub.ListExperiments, grading_pb2.ListGradingExperimentsRequest())
        return [wire.experiment_from(e) for e in response.experiments]

    def add_cases(self, experiment: str | int, case_ids: Sequence[int] = (), *,
                  all_eligible: bool = False) -> grading_pb2.AddCasesResponse:
        return self._call(self.stub.AddCases, grading_pb2.AddCasesRequest(
            experiment=str(experiment), case_ids=list(case_ids), all_eligible=all_eligible))

    def add_pair(self, experiment: str | int, generator_id: int, grader_id: int, reasoning: bool = False) -> ModelPair:
        return wire.pair_from(self._call(self.stub.AddModelPair, grading_pb2.AddModelPairRequest(
            experiment=str(experiment), generator_model_id=generator_id, grader_model_id=grader_id,
            grader_is_reasoning=reasoning)))

    def plan_cases(self, experiment: str | int) -> grading_pb2.PlanCasesResponse:
        return self._call(self.stub.PlanCases, grading_pb2.PlanCasesRequest(experiment=str(experiment)))

    def record_skips(self, experiment_id: int, reasons: dict[int, str]) -> None:
        self._call(self.stub.RecordSkips, grading_pb2.RecordSkipsRequest(
            experiment_id=experiment_id,
            skipped=[grading_pb2.SkippedCase(case_id=case_id, reason=reason) for case_id, reason in reasons.items()]))

    # ---- notes and grades -----------------------------------------------------------------------------------------
    def get_note(self, key: NoteKey) -> NoteResult | None:
        response = self._call(self.stub.GetNote, wire.note_key(key))
        return wire.note_result_from(response.note) if response.HasField("note") else None

    def record_note(self, key: NoteKey, note: dict[str, Any], attempt: int) -> NoteResult:
        return wire.note_result_from(self._call(self.stub.RecordNote, grading_pb2.RecordNoteRequest(
            key=wire.note_key(key), attempt=attempt, note=to_struct(note))))

    def record_note_failure(self, key: NoteKey, error: ErrorRecord) -> NoteResult:
        return wire.note_result_from(self._call(self.stub.RecordNote, grading_pb2.RecordNoteRequest(
            key=wire.note_key(key), attempt=error.attempt, error=wire.error(error))))

    def get_grade(self, key: GradeKey) -> GradeResult | None:
        response = self._call(self.stub.GetGrade, wire.grade_key(key))
        return wire.grade_result_from(response.grade) if response.HasField("grade") else None

    def record_grade(self, key: GradeKey, grades: Sequence[CriterionGrade], overall: float,
                     attempt: int) -> GradeResult:
        success = grading_pb2.GradeOutcome(grades=[wire.criterion_grade(g) for g in grades], overall=overall)
        return wire.grade_result_from(self._call(self.stub.RecordGrade, grading_pb2.RecordGradeRequest(
            key=wire.grade_key(key), attempt=attempt, success=success)))

    def record_grade_failure(self, key: GradeKey, error: ErrorRecord) -> GradeResult:
        return wire.grade_result_from(self._call(self.stub.RecordGrade, grading_pb2.RecordGradeRequest(
            key=wire.grade_key(key), attempt=error.attempt, error=wire.error(error))))

    # ---- monitoring --------------------------------------------------------------------------------------------------
    def progress(self, experiment: str | int) -> grading_pb2.GradingProgress:
        return self._call(self.stub.Progress, grading_pb2.GradingProgressRequest(experiment=str(experiment)))

    def recent(self, experiment: str | int, limit: int = 10) -> list[grading_pb2.Activity]:
        return list(self._call(self.stub.RecentActivity, grading_pb2.RecentActivityRequest(
            experiment=str(experiment), limit=limit)).activity)

    def notes(self, experiment: str | int) -> Iterator[NoteResult]:
        for response in self._pages(self.stub.ListNotes, experiment):
            yield from (wire.note_result_from(n) for n in response.notes)

    def grades(self, experiment: str | int) -> Iterator[GradeResult]:
        for response in self._pages(self.stub.ListGrades, experiment):
            yield from (wire.grade_result_from(g) for g in response.grades)

    def _pages(self, method: Callable[..., Any], experiment: str | int) -> Iterator[Any]:
        token = ""
        while True:
            response = self._call(method, grading_pb2.ListResultsRequest(
                experiment=str(experiment), page=common_pb2.PageRequest(page_token=token)))
            yield response
            token = response.next_page_token
            if not token:
                return
