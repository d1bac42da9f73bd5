"""Model backends against a local HTTP server speaking the OpenAI and Anthropic APIs, and the offline baseline."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from ehrlab.grading.backends import (
    MalformedOutputError,
    PermanentBackendError,
    TransientBackendError,
    backend_for,
    model_name,
)
from ehrlab.grading.backends.structured import parse_grades, parse_note
from ehrlab.grading.fake_llm import FakeLLM
from ehrlab.grading.model import ModelSpec, Vendor
from ehrlab.grading.secrets import MissingSecretError, resolve_secret
from tests.grading.conftest import criteria

NOTE = {"subjective": "Documents fact number 0.", "objective": "", "assessment": "", "plan": "Follow up."}
SECRET = "sk-test-0123456789abcdef"


@pytest.fixture
def compatible(fake_llm: FakeLLM) -> ModelSpec:
    return ModelSpec(vendor=Vendor.OPENAI_COMPATIBLE, model="local-llama", base_url=fake_llm.openai_url)


def test_openai_compatible_note_and_grades(fake_llm: FakeLLM, compatible: ModelSpec) -> None:
    backend = backend_for(compatible, timeout_s=5)
    note = backend.generate_note("DOCTOR: What brings you in?\nPATIENT: A cough.", {}, seed=7)
    assert set(note) == {"subjective", "objective", "assessment", "plan"} and "cough" in note["subjective"]
    grades = backend.grade_note(NOTE, criteria(3), "DOCTOR: hi", seed=7)
    assert [g.id for g in grades] == [0, 1, 2]
    assert grades[0].satisfaction == 100.0       # every word of criterion 0 is in the note
    assert grades[2].satisfaction == 100.0       # the forbidden thing is absent: fully complied with
    request = fake_llm.requests[-1].body
    assert request["model"] == "local-llama" and request["seed"] == 7
    assert request["response_format"]["json_schema"]["strict"] is True
    assert "reasoning_effort" not in request
    assert fake_llm.requests[-1].authorization == "none"   # local servers: no key needed


@pytest.mark.parametrize(("fault", "error", "kind"), [
    ("malformed", MalformedOutputError, "malformed_output"),
    ("wrong_count", MalformedOutputError, "malformed_output"),
    ("out_of_range", MalformedOutputError, "malformed_output"),
    ("rate_limit", TransientBackendError, "rate_limit"),
    ("server_error", TransientBackendError, "server_error"),
])
def test_transient_faults_are_typed_for_retry(fake_llm: FakeLLM, compatible: ModelSpec, fault: str,
                                              error: type, kind: str) -> None:
    fake_llm.queue([fault])
    with pytest.raises(error) as raised:
        backend_for(compatible, timeout_s=5).grade_note(NOTE, criteria(3), "t", seed=1)
    assert raised.value.type == kind
    assert isinstance(raised.value, TransientBackendError)
    assert len(fake_llm.requests) == 1     # the SDK does not retry behind the platform's back


def test_a_hanging_vendor_times_out(fake_llm: FakeLLM, compatible: ModelSpec) -> None:
    fake_llm.queue(["hang"])
    start = time.monotonic()
    with pytest.raises(TransientBackendError) as raised:
        backend_for(compatible, timeout_s=0.5).generate_note("PATIENT: hi", {}, seed=1)
    assert raised.value.type == "timeout"
    assert time.monotonic() - start < 2.5


def test_credentials_come_from_the_secret_and_never_leak(fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("EHRLAB_SECRET_OPENAI_TEST", SECRET)
    spec = ModelSpec(vendor=Vendor.OPENAI, model="gpt-4.1", base_url=fake_llm.openai_url,
                     credentials_ref="openai-test")
    caplog.set_level(logging.DEBUG)
    backend_for(spec, timeout_s=5).generate_note("PATIENT: hi", {}, seed=1)
    assert fake_llm.requests[-1].authorization == SECRET
    fake_llm.queue(["auth"])     # the server echoes the key it was sent
    with pytest.raises(PermanentBackendError) as raised:
        backend_for(spec, timeout_s=5).generate_note("PATIENT: hi", {}, seed=1)
    assert raised.value.type == "auth"
    assert "Incorrect API key" in str(raised.value) and SECRET not in str(raised.value)
    assert SECRET not in caplog.text


def test_a_missing_secret_is_permanent_and_says_where_to_put_it(fake_llm: FakeLLM) -> None:
    spec = ModelSpec(vendor=Vendor.OPENAI, base_url=fake_llm.openai_url, credentials_ref="absent")
    with pytest.raises(PermanentBackendError, match="EHRLAB_SECRET_ABSENT") as raised:
        backend_for(spec).generate_note("PATIENT: hi", {}, seed=1)
    assert raised.value.type == "credentials"
    assert fake_llm.requests == []
    with pytest.raises(PermanentBackendError, match="needs credentials_ref"):
        backend_for(ModelSpec(vendor=Vendor.OPENAI)).generate_note("PATIENT: hi", {}, seed=1)


def test_secret_from_a_mounted_file(tmp_path: Path) -> None:
    (tmp_path / "vendor-key").write_text(f"  {SECRET}\n")
    assert resolve_secret("vendor-key", {"EHRLAB_SECRETS_DIR": str(tmp_path)}) == SECRET
    assert resolve_secret("vendor-key", {"EHRLAB_SECRETS_DIR": str(tmp_path), "EHRLAB_SECRET_VENDOR_KEY": "x"}) == "x"
    with pytest.raises(MissingSecretError):
        resolve_secret("other", {"EHRLAB_SECRETS_DIR": str(tmp_path)})


def test_reasoning_grader_uses_the_reasoning_model(fake_llm: FakeLLM) -> None:
    spec = ModelSpec(vendor=Vendor.OPENAI_COMPATIBLE, model="chat", reasoning_model="thinker",
                     base_url=fake_llm.openai_url)
    backend_for(spec, reasoning=True).grade_note(NOTE, criteria(2), "t", seed=1)
    assert fake_llm.requests[-1].body["model"] == "thinker"
    assert fake_llm.requests[-1].body["reasoning_effort"] == "medium"
    assert model_name(spec) == "chat" and model_name(ModelSpec(vendor=Vendor.OPENAI), reasoning=True) == "o3"


def test_anthropic_structured_output_by_tool_use(fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHRLAB_SECRET_ANTHROPIC", SECRET)
    spec = ModelSpec(vendor=Vendor.ANTHROPIC, model="claude-test", base_url=fake_llm.anthropic_url,
                     credentials_ref="anthropic")
    note = backend_for(spec).generate_note("PATIENT: A cough.", {}, seed=1)
    assert "cough" in note["subjective"]
    assert fake_llm.requests[-1].path == "/v1/messages"
    assert fake_llm.requests[-1].body["tool_choice"] == {"type": "tool", "name": "record_note"}
    assert fake_llm.requests[-1].authorization == SECRET
    grades = backend_for(spec, reasoning=True).grade_note(NOTE, criteria(3), "t", seed=1)
    assert len(grades) == 3
    assert fake_llm.requests[-1].body["thinking"]["type"] == "enabled"
    fake_llm.queue(["wrong_count", "rate_limit"])
    with pytest.raises(MalformedOutputError):
        backend_for(spec).grade_note(NOTE, criteria(3), "t", seed=1)
    with pytest.raises(TransientBackendError) as raised:
        backend_for(spec).grade_note(NOTE, criteria(3), "t", seed=1)
    assert raised.value.type == "rate_limit"


@pytest.mark.parametrize(("answer", "message"), [
    ("", "no content"),
    ("{not json", "not JSON"),
    ('{"grades": {"id": 0}}', "expected"),
    ('{"grades": [{"id": 0, "satisfaction": 50}]}', "expected 2 item"),
    ('{"grades": [{"id": 0, "satisfaction": 50}, {"id": 0, "satisfaction": 5}]}', "more than once"),
    ('{"grades": [{"id": 0, "satisfaction": 50}, {"id": 7, "satisfaction": 5}]}', "grades[1].id"),
    ('{"grades": [{"id": 0, "satisfaction": "high"}, {"id": 1, "satisfaction": 5}]}', "grades[0].satisfaction"),
    ('{"grades": [{"id": 0, "satisfaction": -1}, {"id": 1, "satisfaction": 5}]}', "grades[0].satisfaction"),
    ('{"grades": [{"id": true, "satisfaction": 1}, {"id": 1, "satisfaction": 5}]}', "grades[0].id"),
])
def test_grade_parsing_refuses_anything_but_one_valid_item_per_criterion(answer: str, message: str) -> None:
    with pytest.raises(MalformedOutputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_grades(answer, 2)


def test_grade_parsing_accepts_fenced_json_and_bare_lists() -> None:
    fenced = '```json\n{"grades": [{"id": 1, "rationale": "r", "satisfaction": 5}, {"id": 0, "satisfaction": 90}]}\n```'
    assert [(g.id, g.satisfaction) for g in parse_grades(fenced, 2)] == [(0, 90.0), (1, 5.0)]
    assert len(parse_grades([{"id": 0, "satisfaction": 1}], 1)) == 1
    with pytest.raises(MalformedOutputError, match="plan"):
        parse_note('{"subjective": "s", "objective": "o", "assessment": "a"}')


def test_offline_backend_writes_notes_from_facts_and_grades_by_similarity() -> None:
    facts = {"subjective": ["Chest pain for three days", "Denies shortness of breath"],
             "objective": ["Blood pressure 150/95"], "assessment": ["Suspected angina"], "plan": ["ECG today"]}
    complete = backend_for(ModelSpec(vendor=Vendor.OFFLINE))
    note = complete.generate_note("", facts, seed=1)
    assert note["plan"] == "ECG today." and "Chest pain for three days." in note["subjective"]
    sparse = backend_for(ModelSpec(vendor=Vendor.OFFLINE, model="template:0.3"))
    notes = [sparse.generate_note("", facts, seed=s) for s in range(6)]
    assert len({str(n) for n in notes}) > 1                                  # replications differ
    assert sparse.generate_note("", facts, seed=3) == notes[3]               # and are reproducible

    from ehrlab.grading.model import Criterion, Sense
    rubric = [Criterion(criterion="Documents chest pain for three days", weight=2, sense=Sense.POSITIVE),
              Criterion(criterion="Documents a plan for an ECG today", weight=2, sense=Sense.POSITIVE),
              Criterion(criterion="Documents that the patient has a penicillin allergy", weight=1,
                        sense=Sense.POSITIVE),
              Criterion(criterion="States that the patient reports shortness of breath", weight=3,
                        sense=Sense.NEGATIVE)]
    grades = complete.grade_note(note, rubric, "", seed=0)
    assert grades[0].satisfaction > 80 and grades[1].satisfaction > 50
    assert grades[2].satisfaction < 30                                        # absent from the note
    stating = complete.generate_note("", {**facts, "subjective": ["Reports shortness of breath"]}, seed=1)
    # the note that says "denies" complies with the negative criterion; the one stating it does not
    assert grades[3].satisfaction > 50 > complete.grade_note(stating, rubric, "", seed=0)[3].satisfaction
    assert complete.grade_note(note, rubric, "", seed=9) == grades            # deterministic
    with pytest.raises(PermanentBackendError, match="template"):
        backend_for(ModelSpec(vendor=Vendor.OFFLINE, model="gpt-5"))
