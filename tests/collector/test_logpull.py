"""Agent logs: pulled from a real exporter endpoint into SQLite, then served by the API."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from collector.api import error_middleware
from collector.api_context import CONTEXT, ApiContext
from collector.api_logs import add_log_routes as add_api_log_routes
from collector.logpull import LOG_CONTENT_TYPE, LogCursors, PullHealth, logs_url, pull_logs
from collector.scrapers import Scrapers
from collector.settings import ScrapeSettings, TargetSettings
from collector.storage.sqlite import SqliteStorage
from collector.targets import Target, resolve_target
from exporter.logbuffer import LogBuffer
from exporter.logs_http import add_log_routes
from fleetpulse.core.headers import EXPORTER_HEADER
from fleetpulse.core.listen import Listen
from fleetpulse.core.samples import Sample
from fleetpulse.core.selector import parse_selector
from fleetpulse.core.site import start_site
from fleetpulse.core.storage import AGENT_LOGS
from fleetpulse.core.thresholds import Thresholds
from fleetpulse.core.timeutil import now_ms
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


World = tuple[ExporterLogServer, Target, SqliteStorage]
Api = tuple[str, ExporterLogServer, Target, SqliteStorage]


@pytest.fixture
async def world(store: SqliteStorage) -> AsyncIterator[World]:
    exporter = ExporterLogServer()
    await exporter.start()
    target = resolve_target(
        TargetSettings(url=f"http://127.0.0.1:{exporter.port}/metrics", host="web-1"),
        ScrapeSettings(),
    )
    try:
        yield exporter, target, store
    finally:
        await exporter.stop()


async def stored_messages(store: SqliteStorage) -> list[str]:
    events = await store.query_events(AGENT_LOGS, 0, now_ms() + 1000)
    return [str(e.field("message")) for e in events]


def test_logs_url_sits_beside_metrics() -> None:
    assert logs_url("https://h:9184/metrics") == "https://h:9184/logs"
    assert logs_url("http://h/agent/metrics?x=1") == "http://h/agent/logs"


async def test_lines_are_stored_once_and_resume_across_collector_restarts(
    world: World, tmp_path: Path
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


async def test_an_exporter_restart_starts_its_sequence_over(world: World, tmp_path: Path) -> None:
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


async def test_a_dead_exporter_or_store_loses_nothing(world: World, tmp_path: Path) -> None:
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
async def api(world: World) -> AsyncIterator[Api]:
    exporter, target, store = world
    # the collector pulls lines after a good scrape: the host is known by then
    await store.write([Sample("up", target.labels, 1.0, now_ms())])
    app = web.Application(middlewares=[error_middleware])
    app[CONTEXT] = ApiContext(store, Thresholds, 1.0, CollectorRegistry())
    add_api_log_routes(app)
    async with serve_app(app) as base:
        yield base, exporter, target, store


async def test_api_serves_stored_lines_with_level_and_text_filters(api: Api) -> None:
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


async def test_api_stream_follows_new_lines_and_resumes_after_a_drop(api: Api) -> None:
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


async def test_host_filter_reads_only_that_host(api: Api) -> None:
    _, exporter, target, store = api
    exporter.log.warning("x")
    async with aiohttp.ClientSession() as session:
        await pull_logs(session, target, store, LogCursors(Path(store.path).parent / "c.json"))
    assert (
        await store.query_events(AGENT_LOGS, 0, now_ms(), parse_selector('x{host="other"}')) == []
    )


async def test_logs_and_stream_of_an_unknown_host_are_json_404(api: Api) -> None:
    base, exporter, target, store = api
    exporter.log.warning("a line of web-1")
    async with aiohttp.ClientSession() as session:
        await pull_logs(session, target, store, LogCursors(Path(store.path).parent / "c.json"))
        for path in ("logs", "logs/stream"):
            async with session.get(f"{base}/api/v1/hosts/nope/{path}") as response:
                assert response.status == 404
                body = await response.json()
            assert body == {"error": "unknown host 'nope'; GET /api/v1/hosts lists the known hosts"}
        async with session.get(f"{base}/api/v1/hosts/web-1/logs") as response:
            assert response.status == 200
            assert [line["message"] for line in (await response.json())["lines"]] == [
                "a line of web-1"
            ]


FOREIGN_LOGS: dict[str, Callable[[], web.Response]] = {
    "404": lambda: web.Response(status=404, text="404 page not found\n"),
    "html": lambda: web.Response(text="<html><body>logs</body></html>", content_type="text/html"),
    "other json": lambda: web.json_response({"logs": []}, headers={"FleetPulse-Log-Instance": "x"}),
}


class ForeignTarget:
    """A real server whose /metrics may or may not name a FleetPulse exporter and whose /logs
    answers something that is not ours; it counts the requests of each path."""

    def __init__(self, logs_answer: str, identifies: bool) -> None:
        self.requests: Counter[str] = Counter()
        self.arrived = asyncio.Event()  # set on every request
        self.app = web.Application()
        self.app.router.add_get("/metrics", self.metrics)
        self.app.router.add_get("/logs", self.logs)
        self.answer = FOREIGN_LOGS[logs_answer]
        self.headers = {EXPORTER_HEADER: "0.1.0"} if identifies else {}

    async def metrics(self, request: web.Request) -> web.Response:
        self.requests["/metrics"] += 1
        self.arrived.set()
        return web.Response(text="node_load1 0.5\n", headers=self.headers)

    async def logs(self, request: web.Request) -> web.Response:
        self.requests["/logs"] += 1
        self.arrived.set()
        return self.answer()

    async def wait_for(self, path: str, count: int) -> None:
        while self.requests[path] < count:
            self.arrived.clear()
            await self.arrived.wait()


async def scrape_foreign(
    tmp_path: Path, store: SqliteStorage, server: ForeignTarget, after_logs: int
) -> None:
    """Run the real scrape loops against `server` until it was scraped 5 times after its /logs
    was asked `after_logs` times (a deadline, not a duration)."""
    collector = Scrapers(store, CollectorRegistry(), log_cursors=LogCursors(tmp_path / "c.json"))
    async with serve_app(server.app) as base:
        settings = TargetSettings(url=f"{base}/metrics", host="node", interval=0.2, timeout=0.2)
        await collector.start([resolve_target(settings, ScrapeSettings())])
        try:
            async with asyncio.timeout(30):
                await server.wait_for("/logs", after_logs)
                await server.wait_for("/metrics", server.requests["/metrics"] + 5)
        finally:
            await collector.stop()


def log_pull_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "log pull" in r.getMessage()]


@pytest.mark.parametrize("logs_answer", sorted(FOREIGN_LOGS))
async def test_a_target_without_the_exporter_header_is_never_asked_for_logs(
    tmp_path: Path, store: SqliteStorage, caplog: pytest.LogCaptureFixture, logs_answer: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="collector")
    server = ForeignTarget(logs_answer, identifies=False)
    await scrape_foreign(tmp_path, store, server, after_logs=0)
    assert server.requests["/logs"] == 0
    assert log_pull_lines(caplog) == []


@pytest.mark.parametrize("logs_answer", sorted(FOREIGN_LOGS))
async def test_an_exporter_whose_logs_are_not_ours_is_asked_once_and_logged_once(
    tmp_path: Path, store: SqliteStorage, caplog: pytest.LogCaptureFixture, logs_answer: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="collector")
    server = ForeignTarget(logs_answer, identifies=True)
    await scrape_foreign(tmp_path, store, server, after_logs=1)
    assert server.requests["/logs"] == 1
    (line,) = log_pull_lines(caplog)
    assert line.startswith("log pull paused, /logs is not a FleetPulse exporter's host=node ")
    assert line.endswith(" retry_in=1h")


async def test_a_paused_target_is_due_again_after_the_backoff_and_logged_once_per_pause(
    tmp_path: Path, store: SqliteStorage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="collector")
    clock = [1000.0]
    health = PullHealth(backoff=3600, clock=lambda: clock[0])
    server = ForeignTarget("html", identifies=True)
    cursors = LogCursors(tmp_path / "c.json")
    async with serve_app(server.app) as base, aiohttp.ClientSession() as session:
        settings = TargetSettings(url=f"{base}/metrics", host="node")
        target = resolve_target(settings, ScrapeSettings())
        assert health.due(target)
        await pull_logs(session, target, store, cursors, health)
        clock[0] += 3599
        assert not health.due(target)
        assert len(log_pull_lines(caplog)) == 1
        clock[0] += 1
        assert health.due(target)
        await pull_logs(session, target, store, cursors, health)
    assert server.requests["/logs"] == 2
    assert len(log_pull_lines(caplog)) == 2


async def test_a_failing_pull_logs_once_repeats_at_debug_and_its_recovery_once(
    world: World,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="collector.logpull")
    exporter, target, store = world
    cursors = LogCursors(tmp_path / "log-cursors.json")
    health = PullHealth()
    await exporter.stop()
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            assert await pull_logs(session, target, store, cursors, health) == 0
        assert health.due(target)  # a refused connection is not a foreign /logs: no pause
        await exporter.start()
        exporter.log.warning("back")
        assert await pull_logs(session, target, store, cursors, health) == 1
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if "log pull" in r.getMessage()]
    assert [level for level, _ in lines] == ["INFO", "DEBUG", "DEBUG", "INFO"], lines
    assert lines[0][1].startswith("log pull failed host=web-1 ")
    assert lines[3][1].startswith("log pull recovered host=web-1 ")


async def test_a_logs_page_over_the_body_limit_is_refused_and_nothing_is_stored(
    tmp_path: Path, store: SqliteStorage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collector.logpull")
    line = json.dumps({"seq": 1, "ts": 1, "level": "error", "message": "x" * 4096})

    async def huge_page(request: web.Request) -> web.Response:
        return web.Response(
            text=(line + "\n") * 1000,
            content_type=LOG_CONTENT_TYPE,
            headers={"FleetPulse-Log-Instance": "i1"},
        )

    app = web.Application()
    app.router.add_get("/logs", huge_page)
    async with serve_app(app) as base, aiohttp.ClientSession() as session:
        settings = TargetSettings(url=f"{base}/metrics", host="big", body_size_limit=1_000_000)
        target = resolve_target(settings, ScrapeSettings())
        await pull_logs(session, target, store, LogCursors(tmp_path / "c.json"), PullHealth())
    assert await store.query_events(AGENT_LOGS, 0, 2**62) == []
    assert any(
        "/logs page larger than the limit of 1000000 bytes" in r.getMessage()
        for r in caplog.records
    )
