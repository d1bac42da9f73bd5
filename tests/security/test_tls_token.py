"""gRPC TLS and the bearer token on a real controller process, through the client library and the CLI.

Certificates come from openssl (a throwaway CA and a server certificate for 127.0.0.1/localhost).
Neither the token nor a key may show up in logs or metrics.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ehrlab.core.channels import open_channel
from ehrlab.core.embedded.postgres import EmbeddedPostgres
from ehrlab.v1 import controller_pb2, controller_pb2_grpc

TOKEN = "s3cr3t-token-0123456789abcdef"


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path  # a CA that did not sign the server certificate


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    for name in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
                "-days", "2", "-subj", f"/CN=ehrlab test {name}", cwd=root)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=ehrlab-controller", cwd=root)
    (root / "san.ext").write_text("subjectAltName=DNS:localhost,DNS:ehrlab-controller,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=root)
    return Pki(root / "ca.pem", root / "server.pem", root / "server.key", root / "other-ca.pem")


@dataclass
class Controller:
    address: str
    metrics_port: int
    log: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def controller(pki: Pki, postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    """A controller process serving gRPC over TLS and requiring the token (shared by this module's tests)."""
    tmp_path = tmp_path_factory.mktemp("controller")
    admin = postgres.url.rsplit("/", 1)[0]
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE security_tests")
    database_url = f"{admin}/security_tests"
    env = {**os.environ, "EHRLAB_DATABASE_URL": database_url, "EHRLAB_HOME": str(tmp_path / ".ehrlab"),
           "EHRLAB_ARTIFACT_STORE": str(tmp_path / "store"), "EHRLAB_TLS_CERT": str(pki.cert),
           "EHRLAB_TLS_KEY": str(pki.key), "EHRLAB_TLS_CA": str(pki.ca), "EHRLAB_TOKEN": TOKEN}
    log = tmp_path / "controller.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "ehrlab.services.controller", "--host", "127.0.0.1",
                                    "--port", "0", "--metrics-port", "0"], env=env, stdout=subprocess.PIPE,
                                   stderr=sink, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("EHRLAB_READY"), log.read_text()
        ports = dict(part.split("=") for part in line.split()[2:])
        client_env = {k: v for k, v in os.environ.items() if not k.startswith("EHRLAB_")}
        yield Controller(f"127.0.0.1:{ports['grpc']}", int(ports["metrics"]), log, client_env)
    finally:
        process.terminate()
        process.wait(timeout=30)
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS security_tests WITH (FORCE)")


def list_experiments(channel: grpc.Channel) -> controller_pb2.ListExperimentsResponse:
    return controller_pb2_grpc.ControllerStub(channel).ListExperiments(controller_pb2.ListExperimentsRequest(),
                                                                        timeout=10)


def test_tls_and_token_admit_the_right_caller(controller: Controller, pki: Pki) -> None:
    with open_channel(controller.address, token=TOKEN, ca=str(pki.ca)) as channel:
        list_experiments(channel)


@pytest.mark.parametrize(("token", "trust", "code"), [
    ("", "ca", grpc.StatusCode.UNAUTHENTICATED),
    ("wrong-token", "ca", grpc.StatusCode.UNAUTHENTICATED),
    (TOKEN, "other", grpc.StatusCode.UNAVAILABLE),       # the server's certificate is not trusted
    (TOKEN, "plaintext", grpc.StatusCode.UNAVAILABLE),   # no TLS at all
])
def test_wrong_credentials_are_refused(controller: Controller, pki: Pki, token: str, trust: str,
                                       code: grpc.StatusCode) -> None:
    if trust == "plaintext":
        channel = open_channel(controller.address, token=token)
    else:
        channel = open_channel(controller.address, token=token, ca=str(pki.ca if trust == "ca" else pki.other_ca))
    with channel, pytest.raises(grpc.RpcError) as caught:
        list_experiments(channel)
    assert caught.value.code() == code


def test_health_needs_no_token(controller: Controller, pki: Pki) -> None:
    """Kubelet probes and load balancers check health without credentials (over TLS here)."""
    with open_channel(controller.address, ca=str(pki.ca)) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_cli_uses_tls_and_token(controller: Controller, pki: Pki) -> None:
    base = [sys.executable, "-m", "ehrlab.cli.main", "--controller", controller.address]
    ok = subprocess.run([*base, "--tls-ca", str(pki.ca), "--token", TOKEN, "ls"], env=controller.env,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    from_env = subprocess.run([*base, "ls"], capture_output=True, text=True, timeout=60,
                              env={**controller.env, "EHRLAB_TLS_CA": str(pki.ca), "EHRLAB_TOKEN": TOKEN})
    assert from_env.returncode == 0, from_env.stderr
    refused = subprocess.run([*base, "--tls-ca", str(pki.ca), "--token", "wrong-token", "ls"], env=controller.env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr and "token" in refused.stderr.lower()
    assert TOKEN not in ok.stdout + ok.stderr + from_env.stderr + refused.stderr


def test_token_and_key_never_reach_logs_or_metrics(controller: Controller, pki: Pki) -> None:
    for token in (TOKEN, "wrong-token"):
        with open_channel(controller.address, token=token, ca=str(pki.ca)) as channel:
            try:
                list_experiments(channel)
            except grpc.RpcError:
                pass
    with urllib.request.urlopen(f"http://127.0.0.1:{controller.metrics_port}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert 'grpc_code="UNAUTHENTICATED"' in metrics
    key = pki.key.read_text().splitlines()[1]
    for text in (metrics, controller.log.read_text()):
        assert TOKEN not in text and "wrong-token" not in text and key not in text
