"""The grader service over real gRPC: GenerateNote and GradeNote, failures as retry-aware status codes."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from ehrlab.core.channels import open_channel
from ehrlab.core.serving import Server
from ehrlab.core.settings import Settings
from ehrlab.core.wire import from_struct, to_struct
from ehrlab.grading import wire
from ehrlab.grading.fake_llm import FakeLLM
from ehrlab.services.grader.servicer import GraderServicer
from ehrlab.v1 import grader_pb2, grader_pb2_grpc
from tests.grading.conftest import criteria

NOTE = {"subjective": "Documents fact number 0.", "objective": "", "assessment": "", "plan": "Follow up."}


@pytest.fixture
def grader() -> Iterator[grader_pb2_grpc.GraderStub]:
    server = Server("grader", Settings(), port=0, host="127.0.0.1")
    server.add(grader_pb2_grpc.add_GraderServicer_to_server, GraderServicer(), "ehrlab.v1.Grader")
    server.start()
    channel = open_channel(f"127.0.0.1:{server.port}")
    yield grader_pb2_grpc.GraderStub(channel)
    channel.close()
    server.stop(grace=0)


def model(fake: FakeLLM, **extra: str) -> grader_pb2.ModelRef:
    return grader_pb2.ModelRef(vendor="openai-compatible", model="m", base_url=fake.openai_url, **extra)


def test_generate_and_grade_through_the_service(grader: grader_pb2_grpc.GraderStub, fake_llm: FakeLLM) -> None:
    note = grader.GenerateNote(grader_pb2.GenerateNoteRequest(model=model(fake_llm), transcript="PATIENT: A cough.",
                                                              seed=3))
    assert "cough" in from_struct(note.note)["subjective"] and note.model_used == "m"
    graded = grader.GradeNote(grader_pb2.GradeNoteRequest(
        model=model(fake_llm), note=to_struct(NOTE), criteria=[wire.criterion(c) for c in criteria(3)],
        transcript="t"))
    assert [g.id for g in graded.grades] == [0, 1, 2]
    # criterion 0 (weight 1) fully met, criterion 1 (weight 2) missing, negative criterion 2 fully avoided
    assert [g.score for g in graded.grades] == pytest.approx([1.0, graded.grades[1].satisfaction / 50, 0.0])
    assert graded.overall == pytest.approx(sum(g.score for g in graded.grades))


def test_offline_grading_through_the_service(grader: grader_pb2_grpc.GraderStub) -> None:
    offline = grader_pb2.ModelRef(vendor="offline")
    note = grader.GenerateNote(grader_pb2.GenerateNoteRequest(
        model=offline, transcript="PATIENT: hi", facts=to_struct({"subjective": ["Documents fact number 0"]})))
    graded = grader.GradeNote(grader_pb2.GradeNoteRequest(model=offline, note=note.note,
                                                          criteria=[wire.criterion(c) for c in criteria(2)]))
    assert graded.grades[0].satisfaction == 100.0 and graded.model_used == "template"


@pytest.mark.parametrize(("fault", "code", "kind"), [
    ("rate_limit", grpc.StatusCode.RESOURCE_EXHAUSTED, "rate_limit"),
    ("hang", grpc.StatusCode.DEADLINE_EXCEEDED, "timeout"),
    ("wrong_count", grpc.StatusCode.ABORTED, "malformed_output"),
    ("server_error", grpc.StatusCode.ABORTED, "server_error"),
    ("auth", grpc.StatusCode.FAILED_PRECONDITION, "auth"),
])
def test_failures_say_whether_to_retry(grader: grader_pb2_grpc.GraderStub, fake_llm: FakeLLM, fault: str,
                                       code: grpc.StatusCode, kind: str) -> None:
    fake_llm.queue([fault])
    with pytest.raises(grpc.RpcError) as raised:
        grader.GradeNote(grader_pb2.GradeNoteRequest(model=model(fake_llm), note=to_struct(NOTE),
                                                     criteria=[wire.criterion(c) for c in criteria(3)],
                                                     timeout_seconds=0.5))
    assert raised.value.code() is code
    assert len(fake_llm.requests) == 1     # the caller decides about retries, not the channel
    assert dict(raised.value.trailing_metadata())["ehrlab-error-type"] == kind


@pytest.mark.parametrize(("request_fields", "field"), [
    ({"criteria": []}, "criteria"),
    ({"criteria": [grader_pb2.Criterion(criterion="c", sense=grader_pb2.SENSE_POSITIVE)]}, "criteria[0].weight"),
    ({"model": grader_pb2.ModelRef(vendor="nope")}, "model.vendor"),
    ({"model": grader_pb2.ModelRef(vendor="openai-compatible")}, "model"),
    ({"note": to_struct({})}, "note"),
])
def test_bad_requests_name_the_field(grader: grader_pb2_grpc.GraderStub, request_fields: dict, field: str) -> None:
    body = {"model": grader_pb2.ModelRef(vendor="offline"), "note": to_struct(NOTE),
            "criteria": [wire.criterion(c) for c in criteria(2)], **request_fields}
    with pytest.raises(grpc.RpcError) as raised:
        grader.GradeNote(grader_pb2.GradeNoteRequest(**body))
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert dict(raised.value.trailing_metadata())["ehrlab-field"] == field
