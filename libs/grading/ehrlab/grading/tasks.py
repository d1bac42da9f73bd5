"""The bodies of `generate_note` and `grade_note` tasks.

Each first asks the GradingStore whether its note (or grade) is already stored; if so it reuses it
and calls no model (a rerun after a crash, or after a code change that altered the task key). If
not, it calls the backend and records the outcome:
- success: recorded; if another attempt stored one first (a worker killed after writing, then
  retried), the stored one wins and is used, so each note is stored once;
- transient failure (rate limit, timeout, malformed output, …): recorded with its error, then the
  task fails so the engine retries it with backoff, until `max_attempts`;
- permanent failure (bad credentials, missing secret, a request the vendor rejects): recorded, then
  raised as a configuration error, which the engine does not retry.
Secrets never reach the outputs or the store: error texts are scrubbed by the backends.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import NoReturn

from ehrlab.core.context import TaskContext
from ehrlab.core.errors import SpecError
from ehrlab.core.settings import load_settings
from ehrlab.grading.backends import BackendError, PermanentBackendError, backend_for, model_name
from ehrlab.grading.client import GradingClient
from ehrlab.grading.kinds import GenerateNoteParams, GradeNoteParams
from ehrlab.grading.model import ErrorRecord, GradeKey, NoteKey
from ehrlab.grading.scoring import score_grades

NOTE_FILE = "note.json"
GRADE_FILE = "grade.json"


@lru_cache(maxsize=4)
def _client(address: str) -> GradingClient:
    return GradingClient.connect(address)


def grading_store() -> GradingClient:
    """The GradingStore client of this process: a worker keeps one channel for all the tasks it runs."""
    return _client(load_settings().address("result-store"))


def _fail(exc: BackendError) -> NoReturn:
    if isinstance(exc, PermanentBackendError):
        raise SpecError(f"{exc.type}: {exc}", path="params.model") from None
    raise exc


def generate_note(ctx: TaskContext) -> None:
    p: GenerateNoteParams = ctx.params  # type: ignore[assignment]
    key = NoteKey(experiment_id=p.experiment_id, case_id=p.case_id, pair_id=p.pair_id, replication=p.replication)
    store = grading_store()
    stored = store.get_note(key)
    reused = stored is not None and not stored.failed
    if not reused:
        try:
            note = backend_for(p.model, timeout_s=p.request_timeout_s).generate_note(p.transcript, p.facts, p.seed)
        except BackendError as exc:
            store.record_note_failure(key, ErrorRecord(attempt=ctx.attempt, type=exc.type, message=str(exc)))
            _fail(exc)
        stored = store.record_note(key, note, ctx.attempt)
    (ctx.output_dir / NOTE_FILE).write_text(json.dumps({"result_id": stored.id, "note": stored.note}))
    ctx.add_results([{**key.model_dump(), "result_id": stored.id, "generator": model_name(p.model),
                      "reused": reused}])


def grade_note(ctx: TaskContext) -> None:
    p: GradeNoteParams = ctx.params  # type: ignore[assignment]
    written = json.loads((ctx.inputs["note"] / NOTE_FILE).read_text())
    key = GradeKey(result_id=written["result_id"], rubric_id=p.rubric_id, replication=p.grade_replication)
    store = grading_store()
    stored = store.get_grade(key)
    reused = stored is not None and not stored.failed
    if not reused:
        try:
            backend = backend_for(p.model, reasoning=p.reasoning, timeout_s=p.request_timeout_s)
            grades = backend.grade_note(written["note"], p.criteria, p.transcript, p.seed)
        except BackendError as exc:
            store.record_grade_failure(key, ErrorRecord(attempt=ctx.attempt, type=exc.type, message=str(exc)))
            _fail(exc)
        scored, overall = score_grades(p.criteria, grades)
        stored = store.record_grade(key, scored, overall, ctx.attempt)
    (ctx.output_dir / GRADE_FILE).write_text(json.dumps(stored.model_dump(mode="json")))
    ctx.add_results([{"experiment_id": p.experiment_id, "case_id": p.case_id, "pair_id": p.pair_id,
                      "note_replication": p.replication, **key.model_dump(), "grade_id": stored.id,
                      "grader": model_name(p.model, reasoning=p.reasoning), "overall": stored.overall,
                      "reused": reused}])
