"""The artifact store under test: every interface test runs once on a local directory and once on S3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ehrlab.core.artifacts import ArtifactStore
from ehrlab.core.artifacts.local import LocalStore
from tests.support.fixtures import drop_bucket, new_s3_store
from tests.support.s3server import RadosGateway

PART_SIZE = 5 << 20  # S3's smallest part, so a test file of a few tens of MB goes up in many parts
PARALLEL_UPLOADS = 2


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
        return
    server: RadosGateway = request.getfixturevalue("s3_server")
    s3 = new_s3_store(server, part_size=PART_SIZE, parallel_uploads=PARALLEL_UPLOADS)
    yield s3
    drop_bucket(server, s3)
