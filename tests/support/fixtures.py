"""pytest fixtures for the real servers: S3 (radosgw), Prometheus and the Pushgateway.

Loaded for every test area through `pytest_plugins` in tests/conftest.py. When a server's binaries
are missing (`./scripts/install-system-deps.sh` installs them) its tests are skipped on a developer
machine, but fail in CI (the `CI` environment variable is set), where a skipped test would hide a
broken setup.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from ehrlab.core.artifacts.s3 import S3Store
from tests.support.prometheus import Prometheus, Pushgateway, Targets
from tests.support.s3server import RadosGateway


def require_installed(*binaries: str) -> None:
    """Skips the test (fails it in CI) when one of `binaries` is not on PATH."""
    missing = [name for name in binaries if shutil.which(name) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed: run ./scripts/install-system-deps.sh"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadosGateway]:
    """One S3 server (Ceph radosgw) for this test process; tests share it through separate buckets."""
    require_installed("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin")
    server = RadosGateway(tmp_path_factory.mktemp("rgw"))
    server.start()
    yield server
    server.stop()


def new_s3_store(server: RadosGateway, **options: Any) -> S3Store:
    """A store in a new, empty bucket of `server` (options as for S3Store)."""
    return S3Store(f"t-{uuid.uuid4().hex[:16]}", endpoint=server.endpoint, secure=False,
                   credentials=(server.access_key, server.secret_key), **options)


def drop_bucket(server: RadosGateway, store: S3Store) -> None:
    """Deletes the store's bucket with everything in it (keeps the shared server's memory small)."""
    client = server.client()
    if client.bucket_exists(store.bucket):
        store.delete_prefix("")
        client.remove_bucket(store.bucket)


@pytest.fixture
def s3_store(s3_server: RadosGateway) -> Iterator[S3Store]:
    """An S3 artifact store in a fresh bucket (created on first write, removed after the test)."""
    store = new_s3_store(s3_server)
    yield store
    s3_server.start_gateway()  # a fault test may have left the gateway down
    drop_bucket(s3_server, store)


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    """Starts a real Prometheus: `prometheus_factory(targets, rule_files=[...])`; stopped after the test."""
    require_installed("prometheus")
    started: list[Prometheus] = []

    def start(targets: Targets = (), *, rule_files: Sequence[Path] = (),
              extra_scrape_configs: Sequence[Mapping[str, Any]] = (), **options: Any) -> Prometheus:
        server = Prometheus(tmp_path / f"prometheus-{len(started)}", targets, rule_files=rule_files,
                            extra_scrape_configs=extra_scrape_configs, **options)
        server.start()
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[Pushgateway]:
    """A real, empty Pushgateway for this test."""
    require_installed("prometheus-pushgateway")
    gateway = Pushgateway(tmp_path / "pushgateway")
    gateway.start()
    yield gateway
    gateway.stop()
