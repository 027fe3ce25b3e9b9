"""Fixtures more than one test package uses: a fresh SQLite store, the HTTP API over it, the
recording InfluxDB API, and the private Docker engine with a sandbox per test.

Each package's own fixtures are in its conftest.py. The service imports happen inside the
fixtures, so a package's tests load only the services they use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.docker_engine import DockerEngine, DockerSandbox, engine_or_skip
from tests.support.influx_recorder import InfluxRecorder

if TYPE_CHECKING:
    from collector.storage.sqlite import SqliteStorage
    from tests.support.api import ServeApi


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    """A fresh SQLite store (`metrics.db` in the test's folder) with the default retention."""
    from collector.storage.sqlite import SqliteStorage
    from fleetpulse.core.tiers import RetentionSettings

    storage = await SqliteStorage.open(tmp_path / "metrics.db", RetentionSettings())
    try:
        yield storage
    finally:
        await storage.close()


@pytest.fixture
async def serve_api(store: SqliteStorage) -> AsyncIterator[ServeApi]:
    """Starts the HTTP API (with the alert routes) over `store`: `await serve_api(...)` gives
    its base URL; it stops before the store closes."""
    from tests.support.api import api_server

    async with api_server(store) as serve:
        yield serve


@pytest.fixture
async def recorder() -> AsyncIterator[InfluxRecorder]:
    """The recording InfluxDB 2 API (no InfluxDB server can run here), on a free port."""
    server = InfluxRecorder()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="module")
def engine() -> DockerEngine:
    """The private Docker engine, ready, or the test is skipped (see docker_engine.py)."""
    return engine_or_skip()


@pytest.fixture
def sandbox(engine: DockerEngine, request: pytest.FixtureRequest) -> Iterator[DockerSandbox]:
    """Containers and networks named after the test, removed after it."""
    with engine.sandbox(request.node.name) as box:
        yield box
