"""gRPC plumbing shared by every service: one way to start a server, map errors, expose metrics.

`Server` wires the standard health and reflection services, the Prometheus `/metrics` endpoint,
latency/count metrics per method, optional TLS and bearer-token checks, and translates the
platform's errors into status codes (SpecError -> INVALID_ARGUMENT with the field path in the
trailing metadata `ehrlab-field`, NotFoundError -> NOT_FOUND, …). Servicers just raise.
"""

from __future__ import annotations

import hmac
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Counter, Histogram, start_http_server
from pydantic import ValidationError

from ehrlab.core.config import spec_error
from ehrlab.core.errors import (
    AccessDeniedError,
    ConflictError,
    FailedPreconditionError,
    NotFoundError,
    SpecError,
    UnavailableError,
)
from ehrlab.core.settings import Settings

log = logging.getLogger("ehrlab.serving")

GRPC_SECONDS = Histogram(
    "ehrlab_grpc_server_handling_seconds", "Time to handle a gRPC call (streams: until the stream ends)",
    ["grpc_service", "grpc_method", "grpc_code"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
GRPC_HANDLED = Counter("ehrlab_grpc_server_handled_total", "gRPC calls handled",
                       ["grpc_service", "grpc_method", "grpc_code"])

MAX_MESSAGE = 64 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
# servers accept the clients' keepalive pings (every 30 s, even when idle) instead of answering GOAWAY
SERVER_OPTIONS = [
    *CHANNEL_OPTIONS,
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]
_OPEN_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                  "grpc.reflection.v1.ServerReflection")
_CODES: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (SpecError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (ConflictError, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (AccessDeniedError, grpc.StatusCode.PERMISSION_DENIED),
]


class _Abort(Exception):
    """Raised inside the wrapper after context.abort(), to stop the handler without logging it."""


def _status_for(exc: BaseException) -> tuple[grpc.StatusCode, str, list[tuple[str, str]]]:
    if isinstance(exc, ValidationError):
        exc = spec_error(exc)
    for cls, code in _CODES:
        if isinstance(exc, cls):
            trailers = []
            if isinstance(exc, SpecError):
                trailers = [("ehrlab-field", exc.path), ("ehrlab-source", exc.source)]
            return code, str(exc), trailers
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}", []


def _split(method: str) -> tuple[str, str]:
    _, service, name = method.split("/")
    return service, name


class _ServerInterceptor(grpc.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self.token = token

    def intercept_service(self, continuation: Callable[..., Any], details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        service, method = _split(details.method)
        if self.token and service not in _OPEN_SERVICES:
            sent = dict(details.invocation_metadata or ()).get("authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {self.token}".encode()):
                def deny(request: Any, context: grpc.ServicerContext) -> Any:
                    GRPC_HANDLED.labels(service, method, "UNAUTHENTICATED").inc()
                    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
                return _replace(handler, deny, deny)
        return _wrap(handler, service, method)


def _replace(handler: grpc.RpcMethodHandler, unary: Callable[..., Any], streaming: Callable[..., Any]) -> Any:
    codec = (handler.request_deserializer, handler.response_serializer)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming, *codec)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary, *codec)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(streaming, *codec)
    return grpc.unary_unary_rpc_method_handler(unary, *codec)


def _wrap(handler: grpc.RpcMethodHandler, service: str, method: str) -> Any:
    behaviour = (handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream)

    def finish(start: float, code: str) -> None:
        GRPC_SECONDS.labels(service, method, code).observe(time.perf_counter() - start)
        GRPC_HANDLED.labels(service, method, code).inc()

    def fail(exc: BaseException, context: grpc.ServicerContext, start: float) -> None:
        code, message, trailers = _status_for(exc)
        if code is grpc.StatusCode.INTERNAL:
            log.exception("%s/%s failed", service, method)
        finish(start, code.name)
        if trailers:
            context.set_trailing_metadata(trailers)
        context.abort(code, message)

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        start = time.perf_counter()
        try:
            response = behaviour(request, context)
        except Exception as exc:
            if context.code() not in (None, grpc.StatusCode.OK):  # the servicer aborted on its own
                finish(start, context.code().name)
                raise
            fail(exc, context, start)
        finish(start, (context.code() or grpc.StatusCode.OK).name)
        return response

    def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        start = time.perf_counter()
        try:
            yield from behaviour(request, context)
        except Exception as exc:
            if context.code() not in (None, grpc.StatusCode.OK):
                finish(start, context.code().name)
                raise
            fail(exc, context, start)
        finish(start, (context.code() or grpc.StatusCode.OK).name)

    return _replace(handler, unary, streaming)


class Server:
    """A gRPC server with health, reflection, metrics, errors mapped, TLS and token when configured."""

    def __init__(self, name: str, settings: Settings, *, port: int, host: str = "0.0.0.0",
                 metrics_port: int | None = None, max_workers: int = 64) -> None:
        self.name = name
        self.settings = settings
        self.server = grpc.server(ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name),
                                  interceptors=[_ServerInterceptor(settings.token)], options=SERVER_OPTIONS,
                                  maximum_concurrent_rpcs=None)
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names: list[str] = [health.SERVICE_NAME, reflection.SERVICE_NAME]
        address = f"{host}:{port}"
        if settings.tls.cert and settings.tls.key:
            credentials = grpc.ssl_server_credentials(
                [(Path(settings.tls.key).read_bytes(), Path(settings.tls.cert).read_bytes())])
            self.port = self.server.add_secure_port(address, credentials)
        else:
            self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise UnavailableError(f"{name}: cannot listen on {address}")
        self.metrics_port = metrics_port
        self._stopped = threading.Event()

    def add(self, register: Callable[[Any, grpc.Server], None], servicer: Any, full_name: str) -> None:
        """Adds a servicer: `register` is the generated add_XServicer_to_server; `full_name` its service name."""
        register(servicer, self.server)
        self.service_names.append(full_name)

    def start(self) -> None:
        if self.metrics_port is not None:
            http, _ = start_http_server(self.metrics_port, addr="0.0.0.0")
            self.metrics_port = http.server_port
        reflection.enable_server_reflection(self.service_names, self.server)
        self.server.start()
        for name in ["", *self.service_names]:
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("%s serving gRPC on :%d, metrics on :%s", self.name, self.port, self.metrics_port)

    def stop(self, grace: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self._stopped.set()

    def wait(self, on_stop: Iterable[Callable[[], None]] = ()) -> None:
        """Blocks until SIGTERM/SIGINT, then stops gracefully (running `on_stop` hooks first)."""
        def handle(signum: int, _frame: Any) -> None:
            log.info("%s: signal %d, stopping", self.name, signum)
            for hook in on_stop:
                hook()
            threading.Thread(target=self.stop, daemon=True).start()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
        self._stopped.wait()
