"""Note-grading experiments through the real controller, LocalLauncher and result-store (embedded mode)."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ehrlab.core.embedded.stack import Stack
from ehrlab.grading.analysis import report_from_store, write_report
from ehrlab.grading.cli import run_spec
from ehrlab.grading.client import GradingClient
from ehrlab.grading.fake_llm import FakeLLM
from ehrlab.grading.model import ExperimentDefinition, ModelSpec, Vendor
from ehrlab.grading.synthetic import generated_cases
from ehrlab.v1 import common_pb2

pytestmark = pytest.mark.slow


@pytest.fixture
def store(core_stack: Stack) -> Iterator[GradingClient]:
    with GradingClient.connect(core_stack.addresses()["result-store"]) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_offline_experiment_runs_resumes_and_reports(core_stack: Stack, store: GradingClient,
                                                     tmp_path: Path) -> None:
    name = unique("offline")
    cases = store.put_cases(generated_cases(3, seed=4, ineligible_fraction=0.34, prefix=name))
    store.create_experiment(ExperimentDefinition(name=name, note_replications=1, grade_replications=2))
    store.add_cases(name, [c.id for c in cases])
    sparse = store.add_model(ModelSpec(vendor=Vendor.OFFLINE, model="template:0.6"))
    complete = store.add_model(ModelSpec(vendor=Vendor.OFFLINE, model="template"))
    store.add_pair(name, sparse.id, complete.id)
    store.add_pair(name, complete.id, complete.id)
    client = core_stack.client()

    first = client.wait(client.submit(run_spec(name, workers=3)).id, timeout=600)
    assert first.state == common_pb2.EXPERIMENT_STATE_SUCCEEDED, first.error
    progress = store.progress(name)
    eligible = progress.cases - progress.skipped_cases
    assert eligible >= 1 and progress.skipped_cases >= 1
    # eligible cases × 2 pairs × 1 note; × 2 rubrics × 2 grade replications
    assert (progress.notes.successful, progress.grades.successful) == (eligible * 2, eligible * 2 * 2 * 2)
    assert (progress.notes.failed, progress.grades.failed) == (0, 0)
    assert (progress.expected_notes, progress.expected_grades) == (progress.notes.total, progress.grades.total)

    rerun = client.wait(client.submit(run_spec(name, workers=3)).id, timeout=600)
    assert rerun.counts.cached == rerun.counts.total and rerun.counts.succeeded == 0
    again = store.progress(name)
    assert (again.notes.total, again.grades.total) == (progress.notes.total, progress.grades.total)

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{core_stack.processes['result-store'].metrics}/metrics",
                                     timeout=10).read().decode()
    assert 'ehrlab_grading_results_total{outcome="ok",what="grade"}' in metrics

    report = report_from_store(store, name)
    sparse_pair, complete_pair = report.pairs
    assert complete_pair.percent.mean > sparse_pair.percent.mean      # complete notes score higher
    assert complete_pair.replication_icc.value == 1.0                 # the offline grader is deterministic
    assert len(report.skipped) == progress.skipped_cases
    assert all(p.exists() for p in write_report(report, tmp_path))


def test_vendor_faults_are_retried_recorded_and_a_rerun_resumes(core_stack: Stack, store: GradingClient) -> None:
    good, bad = FakeLLM(hang_s=3).start(), FakeLLM().start()
    try:
        name = unique("faults")
        cases = store.put_cases(generated_cases(1, seed=2, prefix=name))
        store.create_experiment(ExperimentDefinition(name=name, note_replications=1, grade_replications=1))
        store.add_cases(name, [cases[0].id])
        good_model = store.add_model(ModelSpec(vendor=Vendor.OPENAI_COMPATIBLE, model=name,
                                               base_url=good.openai_url))
        bad_model = store.add_model(ModelSpec(vendor=Vendor.OPENAI_COMPATIBLE, model=name, base_url=bad.openai_url))
        good_pair = store.add_pair(name, good_model.id, good_model.id)
        bad_pair = store.add_pair(name, bad_model.id, bad_model.id)
        # the good vendor misbehaves twice (the note: rate limit, malformed; a grade: wrong count) and recovers
        good.queue(["rate_limit", "malformed", "ok", "wrong_count"])
        bad.queue(["server_error"] * 3)                                # the bad one fails every attempt
        client = core_stack.client()
        spec = run_spec(name, workers=1, max_attempts=3, backoff=0.05, request_timeout=1.0)

        first = client.wait(client.submit(spec).id, timeout=600)
        assert first.state == common_pb2.EXPERIMENT_STATE_FAILED
        notes = {n.pair_id: n for n in store.notes(name)}
        assert not notes[good_pair.id].failed
        assert [e.type for e in notes[good_pair.id].errors] == ["rate_limit", "malformed_output"]
        assert notes[bad_pair.id].failed and [e.type for e in notes[bad_pair.id].errors] == ["server_error"] * 3
        grades = list(store.grades(name))
        assert len(grades) == 2 and not any(g.failed for g in grades)          # the bad pair's grades never ran
        assert sum(len(g.errors) for g in grades) == 1
        good_calls = len(good.requests)

        second = client.wait(client.submit(spec).id, timeout=600)              # the bad vendor has recovered
        assert second.state == common_pb2.EXPERIMENT_STATE_SUCCEEDED, second.error
        assert len(good.requests) == good_calls                                  # finished work is not redone
        progress = store.progress(name)
        assert (progress.notes.successful, progress.grades.successful) == (2, 4)
        assert report_from_store(store, name).failures["note:server_error"] == 3
    finally:
        good.stop()
        bad.stop()


def test_grading_run_from_the_command_line(core_stack: Stack, store: GradingClient,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from ehrlab.cli.main import cli

    for variable, value in core_stack.env().items():
        monkeypatch.setenv(variable, value)
    name = unique("cli")
    cases = store.put_cases(generated_cases(1, seed=8, prefix=name))
    store.create_experiment(ExperimentDefinition(name=name))
    store.add_cases(name, [cases[0].id])
    vendor = FakeLLM().start()
    model = store.add_model(ModelSpec(vendor=Vendor.OPENAI_COMPATIBLE, model=name, base_url=vendor.openai_url))
    store.add_pair(name, model.id, model.id)
    try:
        result = CliRunner().invoke(cli, ["grading", "run", name, "--workers", "2", "--max-attempts", "2",
                                          "--wait"], catch_exceptions=False)
    finally:
        vendor.stop()
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "grades" in result.output
    progress = store.progress(name)
    assert (progress.notes.successful, progress.grades.successful) == (1, 2)
    missing = CliRunner().invoke(cli, ["grading", "run", "no-such-experiment"], catch_exceptions=False)
    assert missing.exit_code == 2 and "unknown grading experiment" in missing.output
