"""generate_note and grade_note as tasks: outcomes recorded in the GradingStore, retries, resumption,
a worker killed mid-note, credentials kept out of everything stored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ehrlab.core.artifacts.local import LocalStore
from ehrlab.core.runner import EXIT_CONFIG, TaskFailure, TaskSpec, execute
from ehrlab.grading.backends import MalformedOutputError, TransientBackendError
from ehrlab.grading.client import GradingClient
from ehrlab.grading.fake_llm import FakeLLM
from ehrlab.grading.model import ExperimentDefinition, ModelSpec, NoteKey, Vendor
from ehrlab.grading.store import GradingStore
from tests.grading.conftest import case, rubric

SECRET = "sk-live-abcdefghijklmnopqrstuvwx"


def run(kind: str, params: dict[str, Any], tmp_path: Path, *, attempt: int = 1,
        inputs: dict[str, Path] | None = None) -> Path:
    """One attempt of a task in-process; returns the folder of its outputs."""
    store = LocalStore(tmp_path / "artifacts")
    key = f"{kind}-{params['replication']}-{params.get('rubric_id', 0)}-{attempt}-{time.monotonic_ns()}"
    spec = TaskSpec(task_id=key, kind=kind, key=key, dataset="t", params=params, attempt=attempt,
                    inputs={name: _source(path) for name, path in (inputs or {}).items()})
    execute(spec, store=store, force=True)
    return store.local_path(spec.output_prefix)


def _source(path: Path) -> Any:
    from ehrlab.core.runner import InputRef

    return InputRef(uri=str(path))


@pytest.fixture
def setup(grading: GradingClient, fake_llm: FakeLLM) -> dict[str, Any]:
    stored = grading.put_cases([case("a", rubric("dr_a"), rubric("dr_b"))])[0]
    experiment = grading.create_experiment(ExperimentDefinition(name="e", note_replications=1, grade_replications=1))
    grading.add_cases(experiment.id, [stored.id])
    model = grading.add_model(ModelSpec(vendor=Vendor.OPENAI_COMPATIBLE, model="m", base_url=fake_llm.openai_url))
    pair = grading.add_pair(experiment.id, model.id, model.id)
    common = {"experiment_id": experiment.id, "case_id": stored.id, "pair_id": pair.id, "replication": 0,
              "transcript": stored.transcript, "seed": 5, "request_timeout_s": 1.0,
              "model": model.model_dump(mode="json", exclude={"id"})}
    rubric_0 = stored.rubrics[0]
    return {"note": {**common, "facts": stored.facts},
            "grade": {**common, "rubric_id": rubric_0.id, "grade_replication": 0,
                      "criteria": [c.model_dump(mode="json") for c in rubric_0.criteria]},
            "key": NoteKey(experiment_id=experiment.id, case_id=stored.id, pair_id=pair.id, replication=0)}


def test_a_note_and_its_grade_are_recorded(setup: dict, grading: GradingClient, fake_llm: FakeLLM,
                                           tmp_path: Path) -> None:
    note_dir = run("generate_note", setup["note"], tmp_path)
    written = json.loads((note_dir / "note.json").read_text())
    stored = grading.get_note(setup["key"])
    assert written == {"result_id": stored.id, "note": stored.note} and not stored.failed
    grade_dir = run("grade_note", setup["grade"], tmp_path, inputs={"note": note_dir})
    grade = json.loads((grade_dir / "grade.json").read_text())
    assert len(grade["grades"]) == 3 and grade["overall"] == pytest.approx(sum(g["score"] for g in grade["grades"]))
    rows = [json.loads(line) for line in (grade_dir / "results.jsonl").read_text().splitlines()]
    assert rows[0]["overall"] == grade["overall"] and rows[0]["reused"] is False
    assert len(fake_llm.requests) == 2

    # run again (a rerun after a code change gives the tasks new keys): nothing is asked of the model again
    assert json.loads((run("generate_note", setup["note"], tmp_path) / "note.json").read_text()) == written
    again = json.loads((run("grade_note", setup["grade"], tmp_path, inputs={"note": note_dir}) / "grade.json")
                       .read_text())
    assert again["id"] == grade["id"] and len(fake_llm.requests) == 2


def test_transient_failures_are_recorded_then_a_retry_succeeds(setup: dict, grading: GradingClient,
                                                               fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.queue(["rate_limit", "malformed"])
    with pytest.raises(TransientBackendError):
        run("generate_note", setup["note"], tmp_path, attempt=1)
    with pytest.raises(MalformedOutputError):
        run("generate_note", setup["note"], tmp_path, attempt=2)
    failed = grading.get_note(setup["key"])
    assert failed.failed and [(e.attempt, e.type) for e in failed.errors] == [(1, "rate_limit"),
                                                                             (2, "malformed_output")]
    note_dir = run("generate_note", setup["note"], tmp_path, attempt=3)
    stored = grading.get_note(setup["key"])
    assert not stored.failed and stored.attempts == 3 and len(stored.errors) == 2

    fake_llm.queue(["wrong_count", "hang"])
    for attempt in (1, 2):
        with pytest.raises(TransientBackendError):
            run("grade_note", setup["grade"], tmp_path, attempt=attempt, inputs={"note": note_dir})
    grade = next(iter(grading.grades("e")))
    assert grade.failed and [e.type for e in grade.errors] == ["malformed_output", "timeout"]
    assert grade.overall is None


def test_bad_credentials_fail_once_without_leaking_the_key(setup: dict, grading: GradingClient, store: GradingStore,
                                                           fake_llm: FakeLLM, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHRLAB_SECRET_VENDOR", SECRET)
    params = {**setup["note"], "model": {**setup["note"]["model"], "credentials_ref": "vendor"}}
    fake_llm.queue(["auth"])
    with pytest.raises(TaskFailure) as failure:
        run("generate_note", params, tmp_path)
    assert failure.value.exit_code == EXIT_CONFIG          # not worth retrying
    assert fake_llm.requests[-1].authorization == SECRET    # the secret was used ...
    stored = grading.get_note(setup["key"])
    assert stored.failed and stored.errors[0].type == "auth"
    tables = store.db.fetch_all("SELECT t::text AS row FROM grading_result t UNION ALL "
                                "SELECT t::text FROM grading_model t")
    assert all(SECRET not in r["row"] for r in tables)      # ... and is nowhere in the database
    assert SECRET not in str(failure.value)

    monkeypatch.delenv("EHRLAB_SECRET_VENDOR")
    with pytest.raises(TaskFailure, match="EHRLAB_SECRET_VENDOR") as failure:
        run("generate_note", params, tmp_path)
    assert failure.value.exit_code == EXIT_CONFIG


def test_a_worker_killed_mid_note_is_retried_and_the_note_stored_once(
        setup: dict, grading: GradingClient, store: GradingStore, fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.hang_s = 30.0
    fake_llm.queue(["hang"])
    script = ("import json, sys; from pathlib import Path; from ehrlab.core.runner import run_local; "
              "run_local('generate_note', json.loads(sys.argv[1]), store=None)")
    params = {**setup["note"], "request_timeout_s": 60.0}
    worker = subprocess.Popen([sys.executable, "-c", script, json.dumps(params)], env=dict(os.environ),
                              start_new_session=True)
    deadline = time.monotonic() + 30
    while not fake_llm.requests and time.monotonic() < deadline:   # the worker is waiting on the model
        time.sleep(0.05)
    assert fake_llm.requests, "the worker never called the model"
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    assert grading.get_note(setup["key"]) is None                   # nothing half-written

    run("generate_note", setup["note"], tmp_path, attempt=2)         # the retry
    run("generate_note", setup["note"], tmp_path, attempt=3)         # a duplicate attempt changes nothing
    rows = store.db.fetch_all("SELECT id, failed, attempts FROM grading_result")
    assert len(rows) == 1 and not rows[0]["failed"] and rows[0]["attempts"] == 2
    assert len(fake_llm.requests) == 2
