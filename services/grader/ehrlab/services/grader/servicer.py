"""gRPC servicer of the grader service: note generation and rubric grading, stateless.

Each request names its model; credentials are resolved from the model's secret reference when the
call is made, in this process. A backend failure comes back with a status code that says whether
to retry (RESOURCE_EXHAUSTED for rate limits, DEADLINE_EXCEEDED for timeouts, ABORTED for the
other transient failures) or not (FAILED_PRECONDITION), and the failure type in the trailing
metadata `ehrlab-error-type`. UNAVAILABLE is left to mean the grader itself is unreachable, which
the platform's channels retry on their own; a vendor's failures must reach the caller's retry
policy, which counts and records them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from prometheus_client import Counter, Histogram

from ehrlab.core.errors import SpecError
from ehrlab.core.wire import from_struct, to_struct
from ehrlab.grading import wire
from ehrlab.grading.backends import DEFAULT_TIMEOUT_S, BackendError, TransientBackendError, backend_for, model_name
from ehrlab.grading.scoring import score_grades
from ehrlab.v1 import grader_pb2, grader_pb2_grpc

T = TypeVar("T")
CALLS = Counter("ehrlab_grader_calls_total", "Model calls by operation, vendor and outcome (ok or error type)",
                ["operation", "vendor", "outcome"])
SECONDS = Histogram("ehrlab_grader_call_seconds", "Model call duration", ["operation", "vendor"],
                    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
_STATUS = {"rate_limit": grpc.StatusCode.RESOURCE_EXHAUSTED, "timeout": grpc.StatusCode.DEADLINE_EXCEEDED}


class GraderServicer(grader_pb2_grpc.GraderServicer):
    """Note generation and rubric grading through model backends."""

    def _run(self, operation: str, vendor: str, call: Callable[[], T], context: grpc.ServicerContext) -> T:
        start = time.perf_counter()
        try:
            result = call()
        except BackendError as exc:
            CALLS.labels(operation, vendor, exc.type).inc()
            code = _STATUS.get(exc.type, grpc.StatusCode.ABORTED) if isinstance(exc, TransientBackendError) \
                else grpc.StatusCode.FAILED_PRECONDITION
            context.set_trailing_metadata([("ehrlab-error-type", exc.type)])
            context.abort(code, str(exc))
        finally:
            SECONDS.labels(operation, vendor).observe(time.perf_counter() - start)
        CALLS.labels(operation, vendor, "ok").inc()
        return result

    def GenerateNote(self, request: Any, context: grpc.ServicerContext) -> Any:
        spec = wire.model_spec_from(request.model)
        if not request.transcript.strip():
            raise SpecError("required", path="transcript")
        timeout_s = request.timeout_seconds or DEFAULT_TIMEOUT_S
        note = self._run("generate_note", spec.vendor.value, lambda: backend_for(spec, timeout_s=timeout_s)
                         .generate_note(request.transcript, from_struct(request.facts), request.seed), context)
        return grader_pb2.GenerateNoteResponse(note=to_struct(note), model_used=model_name(spec))

    def GradeNote(self, request: Any, context: grpc.ServicerContext) -> Any:
        spec = wire.model_spec_from(request.model)
        criteria = wire.criteria_from(request.criteria)
        if not criteria:
            raise SpecError("at least one criterion is required", path="criteria")
        note = from_struct(request.note)
        if not note:
            raise SpecError("required", path="note")
        timeout_s = request.timeout_seconds or DEFAULT_TIMEOUT_S
        grades = self._run("grade_note", spec.vendor.value, lambda: backend_for(
            spec, reasoning=request.reasoning, timeout_s=timeout_s).grade_note(
            note, criteria, request.transcript, request.seed), context)
        scored, overall = score_grades(criteria, grades)
        return grader_pb2.GradeNoteResponse(grades=[wire.criterion_grade(g) for g in scored], overall=overall,
                                            model_used=model_name(spec, reasoning=request.reasoning))
