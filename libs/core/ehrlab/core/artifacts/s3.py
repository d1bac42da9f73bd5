"""The artifact store on S3 (AWS, MinIO, Ceph radosgw, …) through the minio SDK.

Files stream both ways. Uploads go up in parts of `part_size` bytes (multipart above one part),
`parallel_uploads` parts at a time, so they hold at most (2 × parallel_uploads + 3) × part_size in
memory whatever the file's size. Downloads are written in 1 MiB chunks to a temporary file beside the
destination, renamed into place when complete. Each object appears whole or not at all: a PUT or a
completed multipart upload is atomic on S3.

The service being briefly unreachable is expected (a restart, a network blip): connection errors,
timeouts and 5xx answers are retried with exponential backoff for at most `retry_seconds`, then the
operation fails with UnavailableError naming the endpoint and the operation. Refused credentials fail
at once with AccessDeniedError. Credentials come from arguments or the environment, never from the
store's URI, so `uri` can be logged.
"""

from __future__ import annotations

import http.client
import io
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

import urllib3
from minio import Minio
from minio.datatypes import Object
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import MIN_PART_SIZE, check_bucket_name

from ehrlab.core.artifacts import ArtifactStore
from ehrlab.core.errors import AccessDeniedError, NotFoundError, SpecError, UnavailableError

log = logging.getLogger("ehrlab.artifacts.s3")
T = TypeVar("T")

CREDENTIAL_VARIABLES = (("EHRLAB_S3_ACCESS_KEY", "EHRLAB_S3_SECRET_KEY"),
                        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
_DENIED = {"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken"}
_MISSING = {"NoSuchKey", "NoSuchBucket"}
_TRANSIENT = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "OperationAborted"}
_NETWORK_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, ConnectionError, TimeoutError)
_CHUNK = 1 << 20
_MAX_BACKOFF = 2.0


def _option(name: str, value: object, convert: Callable[[str], T], what: str) -> T:
    """An option's value: given typed, or parsed from the URI's query string."""
    if not isinstance(value, str):
        return value  # type: ignore[return-value]
    try:
        return convert(value)
    except ValueError:
        raise SpecError(f"S3 store option {name}={value!r} is not {what}", path=name) from None


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(text)


def _credentials(given: tuple[str, str] | None) -> tuple[str | None, str | None, str]:
    """(access key, secret key, where they came from) from the arguments or the environment."""
    if given is not None:
        if isinstance(given, str):
            raise SpecError("S3 credentials never go in the store URI: set EHRLAB_S3_ACCESS_KEY and "
                            "EHRLAB_S3_SECRET_KEY", path="credentials")
        return given[0], given[1], "arguments"
    for access_var, secret_var in CREDENTIAL_VARIABLES:
        if os.environ.get(access_var):
            if not os.environ.get(secret_var):
                raise SpecError(f"{access_var} is set but {secret_var} is not", path=secret_var)
            return os.environ[access_var], os.environ[secret_var], access_var
    return None, None, "anonymous"


class S3Store(ArtifactStore):
    """Objects `{prefix}/{key}` in `bucket` on the S3 service at `endpoint` (host:port).

    Options may be strings (they come from the URI's query: `?endpoint=…&secure=false&region=…`).
    `retry_seconds` bounds the time spent retrying one operation; `timeout` bounds each network
    read (connects give up after at most 5 s). The bucket is created on the first write if missing.
    """

    def __init__(self, bucket: str, prefix: str = "", *, endpoint: str = "s3.amazonaws.com",
                 secure: bool | str = True, region: str | None = None,
                 credentials: tuple[str, str] | None = None, retry_seconds: float | str = 20.0,
                 timeout: float | str = 60.0, part_size: int | str = 8 << 20,
                 parallel_uploads: int | str = 2, **unknown: str) -> None:
        if unknown:
            name = sorted(unknown)[0]
            hint = ("credentials come from EHRLAB_S3_ACCESS_KEY/EHRLAB_S3_SECRET_KEY, never the URI"
                    if "key" in name or "secret" in name else
                    "known: endpoint, secure, region, retry_seconds, timeout, part_size, parallel_uploads")
            raise SpecError(f"unknown S3 store option {name!r} ({hint})", path=name)
        try:
            check_bucket_name(bucket, strict=True)
        except ValueError as exc:
            raise SpecError(f"{exc}", path="bucket") from None
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        self.secure = _option("secure", secure, _flag, "true or false")
        self.region = region or None
        self.retry_seconds = _option("retry_seconds", retry_seconds, float, "a number of seconds")
        self.timeout = _option("timeout", timeout, float, "a number of seconds")
        self.part_size = _option("part_size", part_size, int, "a number of bytes")
        self.parallel_uploads = _option("parallel_uploads", parallel_uploads, int, "a whole number")
        if self.part_size < MIN_PART_SIZE:
            raise SpecError(f"S3 store option part_size={self.part_size} is below S3's minimum of "
                            f"{MIN_PART_SIZE} bytes", path="part_size")
        if self.parallel_uploads < 1 or self.timeout <= 0 or self.retry_seconds < 0:
            raise SpecError("S3 store options parallel_uploads and timeout must be positive, retry_seconds "
                            "not negative", path="parallel_uploads" if self.parallel_uploads < 1 else "timeout")
        access_key, secret_key, self.credential_source = _credentials(credentials)
        self._access_key = access_key or ""
        # retries are ours (bounded by time, with backoff), so the HTTP pool does none of its own
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(5.0, self.timeout), read=self.timeout),
            retries=False, maxsize=32)
        try:
            self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=self.secure,
                                 region=self.region, http_client=http)
        except ValueError as exc:
            raise SpecError(f"S3 store option endpoint={endpoint!r}: {exc} (give host:port)", path="endpoint") from None
        query = {"endpoint": endpoint, **({} if self.secure else {"secure": "false"}),
                 **({"region": self.region} if self.region else {})}
        self._query = urlencode(query, safe=":")
        self.uri = f"s3://{bucket}/{self.prefix}?{self._query}" if self.prefix else f"s3://{bucket}?{self._query}"

    def __repr__(self) -> str:
        return f"S3Store({self.uri!r})"

    def _object_name(self, key: str) -> str:
        key = key.strip("/")
        if not key or any(part in ("", ".", "..") for part in key.split("/")):
            raise ValueError(f"not a valid artifact key: {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object_name(key)}?{self._query}"

    # --- retries and error translation -------------------------------------------------------

    def _call(self, operation: str, key: str, action: Callable[[], T]) -> T:
        """Runs `action`, retrying transient failures with backoff for at most `retry_seconds`."""
        began = time.monotonic()
        delay = 0.1
        attempts = 0
        while True:
            attempts += 1
            try:
                return action()
            except S3Error as exc:
                if exc.code in _DENIED:
                    raise self._denied(operation, key, exc.code) from None
                if exc.code not in _TRANSIENT and exc.response.status < 500:
                    raise
                failure = f"{exc.code} (HTTP {exc.response.status})"
            except (ServerError, InvalidResponseError) as exc:
                # a non-S3 answer (a proxy's error page, an overloaded gateway): its HTTP status decides;
                # InvalidResponseError exposes the status only among its constructor arguments
                status = exc.status_code if isinstance(exc, ServerError) else exc.__reduce__()[1][0]
                if status == 403:
                    raise self._denied(operation, key, "HTTP 403") from None
                if status < 500:
                    raise
                failure = f"HTTP {status}"
            except _NETWORK_ERRORS as exc:
                failure = f"{type(exc).__name__}: {str(exc)[:200]}"
            elapsed = time.monotonic() - began
            if elapsed + delay > self.retry_seconds:
                raise UnavailableError(
                    f"S3 at {self.endpoint} unavailable: {operation} s3://{self.bucket}/{key} failed "
                    f"{attempts} times in {elapsed:.1f}s (retry budget {self.retry_seconds:g}s); last error: "
                    f"{failure}") from None
            log.warning("S3 %s %s/%s failed (%s); retrying in %.1fs", operation, self.bucket, key, failure, delay)
            time.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)

    def _denied(self, operation: str, key: str, code: str) -> AccessDeniedError:
        who = (f"access key {self._access_key[:4]}… from {self.credential_source}" if self._access_key else
               "anonymous: no keys in EHRLAB_S3_ACCESS_KEY/EHRLAB_S3_SECRET_KEY or AWS_ACCESS_KEY_ID/"
               "AWS_SECRET_ACCESS_KEY")
        return AccessDeniedError(f"S3 at {self.endpoint} refused {operation} s3://{self.bucket}/{key}: {code} "
                                 f"({who}); check the keys and the bucket's permissions")

    def _write(self, operation: str, key: str, upload: Callable[[], object]) -> None:
        """An upload, creating the bucket first if it does not exist yet."""
        def attempt() -> None:
            try:
                upload()
            except S3Error as exc:
                if exc.code != "NoSuchBucket":
                    raise
                self._make_bucket()
                upload()
        self._call(operation, key, attempt)

    def _make_bucket(self) -> None:
        try:
            self._client.make_bucket(self.bucket, location=self.region)
            log.info("created S3 bucket %s on %s", self.bucket, self.endpoint)
        except S3Error as exc:
            if exc.code != "BucketAlreadyOwnedByYou":  # another writer created it first
                raise

    # --- the ArtifactStore interface ----------------------------------------------------------

    def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        """Uploads the file; with `move` too the file stays where it is (a remote store cannot take it)."""
        name = self._object_name(key)
        length = Path(path).stat().st_size  # a missing source fails here, before any request

        def upload() -> None:
            with open(path, "rb") as source:
                self._client.put_object(self.bucket, name, source, length, part_size=self.part_size,
                                        num_parallel_uploads=self.parallel_uploads)
        self._write("upload", key, upload)

    def put_bytes(self, key: str, data: bytes) -> None:
        name = self._object_name(key)
        self._write("upload", key, lambda: self._client.put_object(
            self.bucket, name, io.BytesIO(data), len(data), part_size=self.part_size,
            num_parallel_uploads=self.parallel_uploads))

    def _missing(self, key: str) -> NotFoundError:
        return NotFoundError(f"no artifact object {key!r} in {self.uri}")

    def get_file(self, key: str, dest: Path) -> None:
        name = self._object_name(key)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)

        def download() -> None:
            try:
                response = self._client.get_object(self.bucket, name)
            except S3Error as exc:
                if exc.code in _MISSING:
                    raise self._missing(key) from None
                raise
            partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
            try:
                with open(partial, "wb") as out:
                    for chunk in response.stream(_CHUNK):
                        out.write(chunk)
                os.replace(partial, dest)
            finally:
                response.close()
                response.release_conn()
                partial.unlink(missing_ok=True)
        self._call("download", key, download)

    def get_bytes(self, key: str) -> bytes:
        name = self._object_name(key)

        def read() -> bytes:
            try:
                response = self._client.get_object(self.bucket, name)
            except S3Error as exc:
                if exc.code in _MISSING:
                    raise self._missing(key) from None
                raise
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()
        return self._call("download", key, read)

    def size(self, key: str) -> int | None:
        name = self._object_name(key)

        def stat() -> int | None:
            try:
                return self._client.stat_object(self.bucket, name).size
            except S3Error as exc:
                if exc.code in _MISSING:
                    return None
                raise
        return self._call("stat", key, stat)

    def _objects(self, prefix: str) -> list[tuple[str, Object]]:
        """(key, object) under `prefix` (the object `prefix` itself, or below `prefix/`), in key order.

        A prefix is a directory, as on the local store: "a/b" holds "a/b/c", not "a/bc".
        """
        prefix = prefix.strip("/")
        if prefix:
            exact = self._object_name(prefix)
            below = exact + "/"
        else:
            exact, below = None, f"{self.prefix}/" if self.prefix else ""
        strip = len(self.prefix) + 1 if self.prefix else 0

        def listing() -> list[tuple[str, Object]]:
            try:
                found = self._client.list_objects(self.bucket, prefix=exact or below, recursive=True)
                return [(obj.object_name[strip:], obj) for obj in found
                        if obj.object_name == exact or obj.object_name.startswith(below)]
            except S3Error as exc:
                if exc.code == "NoSuchBucket":
                    return []
                raise
        return self._call("list", prefix, listing)

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        for key, obj in self._objects(prefix):
            yield key, obj.size

    def etags(self, prefix: str) -> dict[str, str]:
        """The service's checksum (ETag) of every object under `prefix`: stands for content when hashing sources.

        (A multipart object's ETag depends on its part size too: the same bytes uploaded in other
        parts read as changed, which costs a recomputation, never a wrong cache hit.)
        """
        return {key: (obj.etag or "").strip('"') for key, obj in self._objects(prefix)}

    def delete(self, key: str) -> None:
        name = self._object_name(key)

        def remove() -> None:
            try:
                self._client.remove_object(self.bucket, name)
            except S3Error as exc:
                if exc.code not in _MISSING:
                    raise
        self._call("delete", key, remove)

    def delete_prefix(self, prefix: str) -> int:
        """Deletes in batches of 1,000; an object the batch could not delete is deleted on its own,
        which retries or reports its error like any single operation."""
        found = self._objects(prefix)
        names = [obj.object_name for _, obj in found]

        def remove() -> set[str]:
            errors = self._client.remove_objects(self.bucket, (DeleteObject(n) for n in names))
            return {error.name for error in errors if error.code not in _MISSING}
        failed = self._call("delete", prefix, remove) if names else set()
        for key, obj in found:
            if obj.object_name in failed:
                self.delete(key)
        return len(names)
