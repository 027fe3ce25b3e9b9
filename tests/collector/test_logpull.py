"""Agent logs: pulled from a real exporter endpoint into SQLite, then served by the API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from alerting.thresholds import Thresholds
from collector.api import error_middleware
from collector.api_context import CONTEXT, ApiContext
from collector.api_logs import add_log_routes as add_api_log_routes
from collector.logpull import LogCursors, logs_url, pull_logs
from collector.storage.port import AGENT_LOGS
from collector.storage.settings import RetentionSettings
from collector.storage.sqlite import SqliteStorage
from collector.targets import Target, resolve_target
from exporter.logbuffer import LogBuffer
from exporter.logs_http import add_log_routes
from fleetpulse.config import Listen, ScrapeSettings, TargetSettings
from fleetpulse.selector import parse_selector
from fleetpulse.service import start_site
from fleetpulse.timeutil import now_ms
from tests.support.servers import serve_app
from tests.support.sse import read_events


class ExporterLogServer:
    """A real HTTP server with an exporter's /logs; `restart` gives it a new buffer and run."""

    def __init__(self) -> None:
        self.buffer = LogBuffer()
        self.log = logging.getLogger("test.logpull")
        self.log.propagate = False
        self.log.handlers = [self.buffer]
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        add_log_routes(app, self.buffer)
        self.runner, bound = await start_site(
            app, Listen("127.0.0.1", self.port), shutdown_timeout=0.1
        )
        self.port = bound.port

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def restart(self) -> None:
        await self.stop()
        self.buffer = LogBuffer()
        self.log.handlers = [self.buffer]
        await self.start()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[ExporterLogServer, Target, SqliteStorage]]:
    exporter = ExporterLogServer()
    await exporter.start()
    store = await SqliteStorage.open(tmp_path / "metrics.db", RetentionSettings())
    target = resolve_target(
        TargetSettings(url=f"http://127.0.0.1:{exporter.port}/metrics", host="web-1"),
        ScrapeSettings(),
    )
    yield exporter, target, store
    await exporter.stop()
    await store.close()


async def stored_messages(store: SqliteStorage) -> list[str]:
    events = await store.query_events(AGENT_LOGS, 0, now_ms() + 1000)
    return [str(e.field("message")) for e in events]


def test_logs_url_sits_beside_metrics() -> None:
    assert logs_url("https://h:9184/metrics") == "https://h:9184/logs"
    assert logs_url("http://h/agent/metrics?x=1") == "http://h/agent/logs"


async def test_lines_are_stored_once_and_resume_across_collector_restarts(
    world,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    exporter, target, store = world
    cursors_file = tmp_path / "log-cursors.json"
    async with aiohttp.ClientSession() as session:
        exporter.log.warning("one")
        exporter.log.error("two")
        assert await pull_logs(session, target, store, LogCursors(cursors_file)) == 2
        assert await pull_logs(session, target, store, LogCursors(cursors_file)) == 0
        exporter.log.warning("logged while the collector was down")
        # a new LogCursors object reads the cursor back from disk, as after a restart
        assert await pull_logs(session, target, store, LogCursors(cursors_file)) == 1
    assert await stored_messages(store) == ["one", "two", "logged while the collector was down"]
    events = await store.query_events(AGENT_LOGS, 0, now_ms() + 1000)
    assert dict(events[1].labels) == {
        "host": "web-1",
        "job": "fleetpulse",
        "level": "error",
        "logger": "test.logpull",
        "instance": exporter.buffer.instance,
    }


async def test_an_exporter_restart_starts_its_sequence_over(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    exporter, target, store = world
    cursors = LogCursors(tmp_path / "log-cursors.json")
    async with aiohttp.ClientSession() as session:
        for i in range(5):
            exporter.log.warning("old run %d", i)
        assert await pull_logs(session, target, store, cursors) == 5
        await exporter.restart()
        exporter.log.warning("new run 1")
        assert await pull_logs(session, target, store, cursors) == 1
    # (a restart within the same millisecond can order the two runs either way)
    assert sorted(await stored_messages(store)) == [
        "new run 1",
        *(f"old run {i}" for i in range(5)),
    ]


async def test_a_dead_exporter_or_store_loses_nothing(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    exporter, target, store = world
    cursors = LogCursors(tmp_path / "log-cursors.json")
    exporter.log.warning("kept in the ring buffer")
    await exporter.stop()
    async with aiohttp.ClientSession() as session:
        assert await pull_logs(session, target, store, cursors) == 0
        await exporter.start()
        assert await pull_logs(session, target, store, cursors) == 1
    assert await stored_messages(store) == ["kept in the ring buffer"]


@pytest.fixture
async def api(world) -> AsyncIterator[tuple[str, ExporterLogServer, Target, SqliteStorage]]:  # type: ignore[no-untyped-def]
    exporter, target, store = world
    app = web.Application(middlewares=[error_middleware])
    app[CONTEXT] = ApiContext(store, Thresholds, 1.0, CollectorRegistry())
    add_api_log_routes(app)
    async with serve_app(app) as base:
        yield base, exporter, target, store


async def test_api_serves_stored_lines_with_level_and_text_filters(api) -> None:  # type: ignore[no-untyped-def]
    base, exporter, target, store = api
    exporter.log.info("collection done")
    exporter.log.warning("auth failed remote=127.0.0.1")
    exporter.log.error("docker engine unreachable")
    async with aiohttp.ClientSession() as session:
        await pull_logs(session, target, store, LogCursors(Path(store.path).parent / "c.json"))
        url = f"{base}/api/v1/hosts/web-1/logs"
        async with session.get(url, params={"level": "warning"}) as response:
            lines = (await response.json())["lines"]
        assert [line["message"] for line in lines] == [
            "auth failed remote=127.0.0.1",
            "docker engine unreachable",
        ]
        async with session.get(url, params={"q": "DOCKER"}) as response:
            assert [li["level"] for li in (await response.json())["lines"]] == ["error"]
        async with session.get(url, params={"level": "loud"}) as response:
            assert response.status == 400


async def test_api_stream_follows_new_lines_and_resumes_after_a_drop(api) -> None:  # type: ignore[no-untyped-def]
    base, exporter, target, store = api
    cursors = LogCursors(Path(store.path).parent / "c.json")
    url = f"{base}/api/v1/hosts/web-1/logs/stream"

    async def read(response: aiohttp.ClientResponse, count: int) -> list[tuple[str, str]]:
        return [(i, event["message"]) for i, event in await read_events(response, count)]

    async with aiohttp.ClientSession() as session:
        exporter.log.warning("a")
        await pull_logs(session, target, store, cursors)
        async with session.get(url, params={"since": "-1m"}) as response:
            first = await read(response, 1)
        assert [m for _, m in first] == ["a"]
        exporter.log.warning("b")
        exporter.log.warning("c")
        await pull_logs(session, target, store, cursors)
        async with session.get(url, headers={"Last-Event-ID": first[-1][0]}) as response:
            second = await read(response, 2)
    assert [m for _, m in second] == ["b", "c"]


async def test_host_filter_reads_only_that_host(api) -> None:  # type: ignore[no-untyped-def]
    _, exporter, target, store = api
    exporter.log.warning("x")
    async with aiohttp.ClientSession() as session:
        await pull_logs(session, target, store, LogCursors(Path(store.path).parent / "c.json"))
    assert (
        await store.query_events(AGENT_LOGS, 0, now_ms(), parse_selector('x{host="other"}')) == []
    )
