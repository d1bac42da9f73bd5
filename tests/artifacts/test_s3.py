"""What only the S3 backend has: URIs and credentials, buckets, checksums, and faults of the service.

Faults are real where they can be: the radosgw gateway is killed and restarted (mid-upload too), and
a wrong secret is refused by the server's signature check. What radosgw cannot be told to do (answer
503, hang) comes from a small scripted HTTP server on a socket.
"""

from __future__ import annotations

import hashlib
import http.server
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from ehrlab.core.artifacts import open_store
from ehrlab.core.artifacts.manifest import IntegrityError, artifact_prefix, load_complete, materialize, publish
from ehrlab.core.artifacts.s3 import S3Store
from ehrlab.core.embedded.postgres import free_port
from ehrlab.core.errors import AccessDeniedError, NotFoundError, SpecError, UnavailableError
from tests.artifacts.test_store import file_sha256, write_random
from tests.support.fixtures import drop_bucket, new_s3_store
from tests.support.s3server import RadosGateway

CREDENTIAL_VARIABLES = ("EHRLAB_S3_ACCESS_KEY", "EHRLAB_S3_SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def unique_bucket() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


# --- URIs, options and credentials ------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize("variables", [("EHRLAB_S3_ACCESS_KEY", "EHRLAB_S3_SECRET_KEY"),
                                       ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")])
def test_open_store_from_a_uri_with_credentials_from_the_environment(
        s3_server: RadosGateway, no_credentials: pytest.MonkeyPatch, variables: tuple[str, str]) -> None:
    no_credentials.setenv(variables[0], s3_server.access_key)
    no_credentials.setenv(variables[1], s3_server.secret_key)
    bucket = unique_bucket()
    store = open_store(s3_server.store_uri(bucket, "team/runs") + "&region=us-east-1&retry_seconds=5")
    assert isinstance(store, S3Store)
    assert (store.prefix, store.region, store.retry_seconds, store.credential_source) == (
        "team/runs", "us-east-1", 5.0, variables[0])
    assert s3_server.secret_key not in store.uri and s3_server.access_key not in store.uri
    assert not s3_server.client().bucket_exists(bucket)
    try:
        store.put_bytes("a/b.txt", b"hello")  # the first write creates the bucket
        assert s3_server.client().bucket_exists(bucket)
        assert [o.object_name for o in s3_server.client().list_objects(bucket, recursive=True)] == [
            "team/runs/a/b.txt"]
        assert open_store(store.uri).get_bytes("a/b.txt") == b"hello"  # the URI names the same store
        # an object's URI, read the way task inputs are: the bucket's store, then the path as the key
        location = urlparse(store.uri_for("a/b.txt"))
        assert open_store(f"s3://{location.netloc}?{location.query}").get_bytes(location.path.strip("/")) == b"hello"
    finally:
        drop_bucket(s3_server, store)


@pytest.mark.parametrize(("query", "field", "message"), [
    ("endpoint=h:1&colour=red", "colour", "unknown S3 store option 'colour'"),
    ("endpoint=h:1&secret_key=abc", "secret_key", "never the URI"),
    ("endpoint=h:1&secure=maybe", "secure", "true or false"),
    ("endpoint=h:1&retry_seconds=soon", "retry_seconds", "a number of seconds"),
    ("endpoint=h:1&part_size=1000", "part_size", "below S3's minimum"),
    ("endpoint=h:1&parallel_uploads=0", "parallel_uploads", "positive"),
    ("endpoint=http://h:1", "endpoint", "host:port"),
])
def test_bad_store_options_name_the_option(query: str, field: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as caught:
        open_store(f"s3://bucket-name/prefix?{query}")
    assert caught.value.path == field


def test_a_bad_bucket_name_is_refused_before_any_request() -> None:
    with pytest.raises(SpecError, match="bucket") as caught:
        open_store("s3://Not_A_Bucket?endpoint=127.0.0.1:1")
    assert caught.value.path == "bucket"


def test_credentials_cannot_be_half_set(no_credentials: pytest.MonkeyPatch) -> None:
    no_credentials.setenv("EHRLAB_S3_ACCESS_KEY", "someone")
    with pytest.raises(SpecError, match="EHRLAB_S3_SECRET_KEY"):
        open_store("s3://bucket-name?endpoint=127.0.0.1:1")


# --- buckets, prefixes, checksums --------------------------------------------------------------------


@pytest.mark.s3
def test_stores_with_different_prefixes_share_a_bucket_without_seeing_each_other(s3_server: RadosGateway) -> None:
    first = new_s3_store(s3_server)
    second = S3Store(first.bucket, "tenant-2", endpoint=s3_server.endpoint, secure=False,
                     credentials=(s3_server.access_key, s3_server.secret_key))
    try:
        first.put_bytes("k", b"1")
        second.put_bytes("k", b"2")
        first.put_bytes("tenant-2", b"beside")  # names that merely start like the prefix are not in it
        first.put_bytes("tenant-22/k", b"3")
        assert (first.get_bytes("k"), second.get_bytes("k")) == (b"1", b"2")
        assert list(second.list("")) == [("k", 1)]
        assert [key for key, _ in first.list("")] == ["k", "tenant-2", "tenant-2/k", "tenant-22/k"]
        assert second.delete_prefix("") == 1
        assert [key for key, _ in first.list("")] == ["k", "tenant-2", "tenant-22/k"]
    finally:
        drop_bucket(s3_server, first)


@pytest.mark.s3
def test_reading_a_bucket_that_does_not_exist_finds_nothing_and_creates_nothing(s3_store: S3Store) -> None:
    assert s3_store.size("x") is None
    assert list(s3_store.list("")) == []
    with pytest.raises(NotFoundError):
        s3_store.get_bytes("x")
    s3_store.delete("x")
    assert s3_store.delete_prefix("") == 0
    assert s3_store.etags("") == {}


@pytest.mark.s3
def test_etags_follow_content(s3_store: S3Store) -> None:
    s3_store.put_bytes("src/a.csv", b"1,2\n")
    s3_store.put_bytes("src/b.csv", b"3,4\n")
    before = s3_store.etags("src")
    assert sorted(before) == ["src/a.csv", "src/b.csv"]
    assert before["src/a.csv"] == hashlib.md5(b"1,2\n").hexdigest()  # a single-part ETag is the MD5
    s3_store.put_bytes("src/a.csv", b"1,3\n")
    after = s3_store.etags("src")
    assert after["src/a.csv"] != before["src/a.csv"] and after["src/b.csv"] == before["src/b.csv"]


@pytest.mark.s3
def test_materialize_checks_each_download_against_the_manifest(s3_store: S3Store, tmp_path: Path) -> None:
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "weights.bin").write_bytes(b"\x01" * 1000)
    (tmp_path / "outputs" / "notes.txt").write_text("fine")
    prefix = artifact_prefix("demo", "train", "tampered")
    publish(s3_store, prefix, tmp_path / "outputs")
    s3_store.put_bytes(f"{prefix}/weights.bin", b"\x02" * 1000)  # same size: the manifest check passes
    manifest = load_complete(s3_store, prefix)
    assert manifest is not None
    dest = tmp_path / "inputs"
    with pytest.raises(IntegrityError, match=r"weights\.bin"):
        materialize(s3_store, prefix, manifest, dest)
    assert not dest.exists(), "a download that failed verification is removed"
    assert materialize(s3_store, prefix, manifest, tmp_path / "unchecked", verify=False).is_dir()


# --- refused credentials -------------------------------------------------------------------------------


@pytest.mark.s3
def test_a_wrong_secret_key_is_access_denied_at_once(s3_server: RadosGateway, tmp_path: Path) -> None:
    wrong = "not-the-secret-key"
    store = S3Store(unique_bucket(), endpoint=s3_server.endpoint, secure=False,
                    credentials=(s3_server.access_key, wrong), retry_seconds=20)
    (tmp_path / "f").write_bytes(b"data")
    operations = {"upload": lambda: store.put_bytes("k", b"x"),
                  "upload file": lambda: store.put_file("k", tmp_path / "f"),
                  "download": lambda: store.get_bytes("k"), "stat": lambda: store.size("k"),
                  "list": lambda: list(store.list(""))}
    for name, operation in operations.items():
        began = time.monotonic()
        with pytest.raises(AccessDeniedError) as caught:
            operation()
        assert time.monotonic() - began < 2, f"{name}: refused credentials must not be retried"
        message = str(caught.value)
        assert s3_server.endpoint in message and "SignatureDoesNotMatch" in message
        assert wrong not in message and "arguments" in message


@pytest.mark.s3
def test_no_credentials_at_all_says_where_they_come_from(s3_server: RadosGateway,
                                                          no_credentials: pytest.MonkeyPatch) -> None:
    store = open_store(s3_server.store_uri(unique_bucket()))
    with pytest.raises(AccessDeniedError, match="EHRLAB_S3_ACCESS_KEY"):
        store.put_bytes("k", b"x")


# --- the service going away ---------------------------------------------------------------------------


@pytest.mark.s3
def test_gateway_down_then_back_during_an_operation_retries_until_it_succeeds(
        s3_server: RadosGateway, s3_store: S3Store, tmp_path: Path) -> None:
    digest = write_random(tmp_path / "data.bin", 3 << 20)
    s3_store.put_bytes("before", b"kept")
    outcome: dict[str, object] = {}

    def operations() -> None:
        began = time.monotonic()
        try:
            s3_store.put_file("during/data.bin", tmp_path / "data.bin")
            outcome["kept"] = s3_store.get_bytes("before")
        except Exception as exc:  # reported through the assertions below
            outcome["error"] = exc
        outcome["took"] = time.monotonic() - began

    with s3_server.gateway_down():
        worker = threading.Thread(target=operations)
        worker.start()
        time.sleep(1.5)
    worker.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["kept"] == b"kept" and outcome["took"] >= 1.4
    s3_store.get_file("during/data.bin", tmp_path / "back.bin")
    assert file_sha256(tmp_path / "back.bin") == digest


@pytest.mark.s3
def test_gateway_killed_in_the_middle_of_an_upload(s3_server: RadosGateway, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    store = new_s3_store(s3_server, part_size=5 << 20, parallel_uploads=1)  # 12 parts, one after another
    digest = write_random(tmp_path / "large.bin", 60 << 20)
    store.put_bytes("warm-up", b"")
    errors: list[Exception] = []

    def upload() -> None:
        try:
            store.put_file("large.bin", tmp_path / "large.bin")
        except Exception as exc:  # reported through the assertions below
            errors.append(exc)

    caplog.set_level(logging.WARNING, logger="ehrlab.artifacts.s3")
    try:
        moved = s3_server.bytes_moved()
        worker = threading.Thread(target=upload)
        worker.start()
        while s3_server.bytes_moved() - moved < 12 << 20 and worker.is_alive():
            time.sleep(0.002)
        assert worker.is_alive(), "the upload finished before the gateway could be killed"
        with s3_server.gateway_down():
            time.sleep(1.0)
        worker.join(timeout=60)
        assert not errors, errors
        assert any("retrying" in r.getMessage() for r in caplog.records)
        store.get_file("large.bin", tmp_path / "back.bin")
        assert file_sha256(tmp_path / "back.bin") == digest
    finally:
        drop_bucket(s3_server, store)


@pytest.mark.s3
def test_gateway_down_longer_than_the_retry_budget_is_unavailable(s3_server: RadosGateway, tmp_path: Path) -> None:
    store = new_s3_store(s3_server, retry_seconds=1.5)
    (tmp_path / "f").write_bytes(b"data")
    operations = {"upload": lambda: store.put_file("k", tmp_path / "f"), "download": lambda: store.get_bytes("k"),
                  "stat": lambda: store.size("k"), "list": lambda: list(store.list("p"))}
    with s3_server.gateway_down():
        for name, operation in operations.items():
            began = time.monotonic()
            with pytest.raises(UnavailableError) as caught:
                operation()
            took = time.monotonic() - began
            assert 0.5 < took < 4, f"{name} gave up after {took:.1f}s with a 1.5 s budget"
            message = str(caught.value)
            assert f"S3 at {s3_server.endpoint} unavailable: {name} s3://{store.bucket}/" in message
            assert "retry budget 1.5s" in message


# --- answers radosgw cannot be made to give: 5xx, silence ------------------------------------------


class ScriptedS3(http.server.ThreadingHTTPServer):
    """Answers every request the same way: an S3 error document with a status, or nothing for a while."""

    daemon_threads = True

    def __init__(self, status: int, body: bytes, content_type: str, hang: float = 0.0) -> None:
        self.status, self.body, self.content_type, self.hang = status, body, content_type, hang
        self.requests = 0
        super().__init__(("127.0.0.1", free_port()), _ScriptedHandler)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _ScriptedHandler(http.server.BaseHTTPRequestHandler):
    server: ScriptedS3

    def _answer(self) -> None:
        self.server.requests += 1
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        time.sleep(self.server.hang)
        self.send_response(self.server.status)
        self.send_header("Content-Type", self.server.content_type)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted_s3(request: pytest.FixtureRequest) -> Iterator[ScriptedS3]:
    server = ScriptedS3(**request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


SLOW_DOWN = b"<?xml version='1.0'?><Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>"


@pytest.mark.parametrize(("scripted_s3", "reason"), [
    ({"status": 503, "body": SLOW_DOWN, "content_type": "application/xml"}, "SlowDown (HTTP 503)"),
    ({"status": 502, "body": b"<html>Bad Gateway</html>", "content_type": "text/html"}, "HTTP 502"),
    ({"status": 200, "body": b"", "content_type": "application/xml", "hang": 3.0}, "ReadTimeoutError"),
], indirect=["scripted_s3"], ids=["503-slow-down", "502-from-a-proxy", "no-answer"])
def test_server_errors_and_timeouts_are_retried_then_reported(scripted_s3: ScriptedS3, reason: str) -> None:
    store = S3Store("bucket-name", endpoint=scripted_s3.endpoint, secure=False, region="us-east-1",
                    credentials=("key", "secret"), retry_seconds=1.0, timeout=0.3)
    began = time.monotonic()
    with pytest.raises(UnavailableError, match="download s3://bucket-name/k") as caught:
        store.get_bytes("k")
    assert time.monotonic() - began < 3
    assert reason in str(caught.value)
    assert scripted_s3.requests > 1
