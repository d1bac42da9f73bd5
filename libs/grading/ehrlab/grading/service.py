"""The GradingStore gRPC service, hosted by the result-store process over its database.

`register(server, db)` is all the result-store needs: it applies the grading migrations to the
result-store's schema and adds the servicer. Bad requests raise SpecError (INVALID_ARGUMENT with the
field path), unknown ids NotFoundError, definitions that contradict stored ones ConflictError;
the server plumbing maps them to status codes.
"""

from __future__ import annotations

from typing import Any

import grpc
from prometheus_client import Counter

from ehrlab.core.db import Database
from ehrlab.core.errors import SpecError
from ehrlab.core.serving import Server
from ehrlab.core.wire import from_struct, to_timestamp
from ehrlab.grading import wire
from ehrlab.grading.kinds import grading_code_version
from ehrlab.grading.store import GradingStore
from ehrlab.v1 import grading_pb2, grading_pb2_grpc

RESULTS = Counter("ehrlab_grading_results_total", "Note and grade attempts recorded, by what and outcome",
                  ["what", "outcome"])
DEFAULT_PAGE, MAX_PAGE = 1000, 10_000


def register(server: Server, db: Database) -> None:
    """Applies the grading migrations on the result-store's database and serves GradingStore."""
    store = GradingStore(db)
    store.migrate()
    server.add(grading_pb2_grpc.add_GradingStoreServicer_to_server, GradingStoreServicer(store),
               "ehrlab.v1.GradingStore")


def _page(page: Any) -> tuple[int, int]:
    size = page.page_size or DEFAULT_PAGE
    if not 0 < size <= MAX_PAGE:
        raise SpecError(f"page_size must be within 1..{MAX_PAGE}", path="page.page_size")
    token = page.page_token or "0"
    if not token.isdigit():
        raise SpecError("not a page token from an earlier response", path="page.page_token")
    return int(token), size


def _next_token(ids: list[int], size: int) -> str:
    return str(ids[-1]) if len(ids) == size else ""


class GradingStoreServicer(grading_pb2_grpc.GradingStoreServicer):
    def __init__(self, store: GradingStore) -> None:
        self.store = store

    def _experiment_id(self, name_or_id: str) -> int:
        if not name_or_id:
            raise SpecError("required", path="experiment")
        return self.store.get_experiment(name_or_id).id

    # ---- cases ----------------------------------------------------------------------------------------------
    def PutCases(self, request: Any, context: grpc.ServicerContext) -> Any:
        cases = wire.cases_from(request.cases)
        return grading_pb2.PutCasesResponse(cases=[wire.grading_case(c) for c in self.store.put_cases(cases)])

    def GetCases(self, request: Any, context: grpc.ServicerContext) -> Any:
        ids = [*request.ids, *(self.store.case_id(name) for name in request.names)]
        return grading_pb2.GetCasesResponse(cases=[wire.grading_case(c) for c in self.store.get_cases(ids)])

    def ListCases(self, request: Any, context: grpc.ServicerContext) -> Any:
        after, size = _page(request.page)
        rows = self.store.list_cases(limit=size, after_id=after)
        return grading_pb2.ListCasesResponse(cases=[grading_pb2.CaseSummary(**r) for r in rows],
                                             next_page_token=_next_token([r["id"] for r in rows], size))

    def EligibleCases(self, request: Any, context: grpc.ServicerContext) -> Any:
        return grading_pb2.EligibleCasesResponse(cases=[
            grading_pb2.CaseSummary(id=r["case_id"], name=r["name"], human_authors=r["authors"])
            for r in self.store.eligible_cases()])

    # ---- models -----------------------------------------------------------------------------------------------
    def AddModel(self, request: Any, context: grpc.ServicerContext) -> Any:
        return wire.grading_model(self.store.add_model(wire.model_spec_from(request.model)))

    def ListModels(self, request: Any, context: grpc.ServicerContext) -> Any:
        return grading_pb2.ListModelsResponse(models=[wire.grading_model(m) for m in self.store.list_models()])

    # ---- experiments --------------------------------------------------------------------------------------------
    def CreateExperiment(self, request: Any, context: grpc.ServicerContext) -> Any:
        definition = wire.definition_from(request.experiment)
        if not definition.code_version:
            definition = definition.model_copy(update={"code_version": grading_code_version()})
        return wire.experiment(self.store.create_experiment(definition))

    def GetExperiment(self, request: Any, context: grpc.ServicerContext) -> Any:
        experiment = self.store.get_experiment(self._experiment_id(request.experiment))
        skipped = [grading_pb2.SkippedCase(case_id=r["case_id"], case_name=r["name"], reason=r["skip_reason"],
                                           time=to_timestamp(r["skipped_at"]))
                   for r in self.store.skipped_cases(experiment.id)]
        return grading_pb2.ExperimentDetail(experiment=wire.experiment(experiment),
                                            case_ids=self.store.experiment_case_ids(experiment.id),
                                            pairs=[wire.pair(p) for p in self.store.pairs(experiment.id)],
                                            skipped=skipped)

    def ListExperiments(self, request: Any, context: grpc.ServicerContext) -> Any:
        return grading_pb2.ListGradingExperimentsResponse(
            experiments=[wire.experiment(e) for e in self.store.list_experiments()])

    def AddCases(self, request: Any, context: grpc.ServicerContext) -> Any:
        experiment_id = self._experiment_id(request.experiment)
        case_ids = list(request.case_ids)
        if request.all_eligible:
            case_ids += [r["case_id"] for r in self.store.eligible_cases()]
        if not case_ids:
            raise SpecError("no cases: give case ids or all_eligible", path="case_ids")
        added = self.store.add_cases(experiment_id, case_ids)
        return grading_pb2.AddCasesResponse(added=added, total=len(self.store.experiment_case_ids(experiment_id)))

    def AddModelPair(self, request: Any, context: grpc.ServicerContext) -> Any:
        pair = self.store.add_pair(self._experiment_id(request.experiment), request.generator_model_id,
                                   request.grader_model_id, request.grader_is_reasoning)
        return wire.pair(pair)

    def PlanCases(self, request: Any, context: grpc.ServicerContext) -> Any:
        experiment = self.store.get_experiment(self._experiment_id(request.experiment))
        plans = self.store.case_rubrics(experiment.id)
        cases = {c.id: c for c in self.store.get_cases([p.case_id for p in plans])}
        return grading_pb2.PlanCasesResponse(
            experiment=wire.experiment(experiment),
            cases=[grading_pb2.CasePlan(case=wire.grading_case(cases[p.case_id], p.rubrics), skip_reason=p.skip_reason)
                   for p in plans],
            pairs=[wire.pair(p) for p in self.store.pairs(experiment.id)])

    def RecordSkips(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.store.record_skips(request.experiment_id, {s.case_id: s.reason or "skipped" for s in request.skipped})
        return grading_pb2.RecordSkipsResponse()

    # ---- notes and grades -----------------------------------------------------------------------------------------
    def GetNote(self, request: Any, context: grpc.ServicerContext) -> Any:
        found = self.store.get_note(wire.note_key_from(request))
        return grading_pb2.GetNoteResponse(note=wire.note_result(found) if found else None)

    def RecordNote(self, request: Any, context: grpc.ServicerContext) -> Any:
        key = wire.note_key_from(request.key)
        outcome = request.WhichOneof("outcome")
        if outcome == "note":
            stored = self.store.record_note(key, from_struct(request.note), request.attempt)
        elif outcome == "error":
            stored = self.store.record_note_failure(key, wire.error_from(request.error).model_copy(
                update={"attempt": request.attempt}))
        else:
            raise SpecError("give the note or the error", path="outcome")
        RESULTS.labels("note", "ok" if outcome == "note" else "failed").inc()
        return wire.note_result(stored)

    def GetGrade(self, request: Any, context: grpc.ServicerContext) -> Any:
        found = self.store.get_grade(wire.grade_key_from(request))
        return grading_pb2.GetGradeResponse(grade=wire.grade_result(found) if found else None)

    def RecordGrade(self, request: Any, context: grpc.ServicerContext) -> Any:
        key = wire.grade_key_from(request.key)
        outcome = request.WhichOneof("outcome")
        if outcome == "success":
            grades = wire.criterion_grades_from(request.success.grades, "success.grades")
            stored = self.store.record_grade(key, grades, request.success.overall, request.attempt)
        elif outcome == "error":
            stored = self.store.record_grade_failure(key, wire.error_from(request.error).model_copy(
                update={"attempt": request.attempt}))
        else:
            raise SpecError("give the grades or the error", path="outcome")
        RESULTS.labels("grade", "ok" if outcome == "success" else "failed").inc()
        return wire.grade_result(stored)

    # ---- monitoring -------------------------------------------------------------------------------------------------
    def Progress(self, request: Any, context: grpc.ServicerContext) -> Any:
        figures = self.store.progress(self._experiment_id(request.experiment))

        def counts(row: dict[str, Any]) -> Any:
            return grading_pb2.OutcomeCounts(total=row["total"], successful=row["successful"], failed=row["failed"],
                                             last_update=to_timestamp(row["last_update"]))

        return grading_pb2.GradingProgress(
            notes=counts(figures["notes"]), grades=counts(figures["grades"]),
            expected_notes=figures["expected_notes"], expected_grades=figures["expected_grades"],
            cases=figures["cases"], skipped_cases=figures["skipped_cases"])

    def RecentActivity(self, request: Any, context: grpc.ServicerContext) -> Any:
        limit = request.limit or 10
        if not 0 < limit <= MAX_PAGE:
            raise SpecError(f"limit must be within 1..{MAX_PAGE}", path="limit")
        rows = self.store.recent(self._experiment_id(request.experiment), limit)
        return grading_pb2.RecentActivityResponse(activity=[
            grading_pb2.Activity(what=r["what"], id=r["id"], case_id=r["case_id"], pair_id=r["pair_id"],
                                 replication=r["replication"], rubric_id=r["rubric_id"] or 0, failed=r["failed"],
                                 updated=to_timestamp(r["updated"])) for r in rows])

    def ListNotes(self, request: Any, context: grpc.ServicerContext) -> Any:
        after, size = _page(request.page)
        notes = self.store.notes(self._experiment_id(request.experiment), after_id=after, limit=size)
        return grading_pb2.ListNotesResponse(notes=[wire.note_result(n) for n in notes],
                                             next_page_token=_next_token([n.id for n in notes], size))

    def ListGrades(self, request: Any, context: grpc.ServicerContext) -> Any:
        after, size = _page(request.page)
        grades = self.store.grades(self._experiment_id(request.experiment), after_id=after, limit=size)
        return grading_pb2.ListGradesResponse(grades=[wire.grade_result(g) for g in grades],
                                              next_page_token=_next_token([g.id for g in grades], size))
