"""The exporter's log ring buffer and its /logs and /logs/stream endpoints on a real server."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from exporter.logbuffer import LogBuffer, redact
from exporter.logs_http import add_log_routes
from fleetpulse.core.headers import INSTANCE_HEADER
from fleetpulse.core.httpauth import AuthSettings, auth_middleware
from tests.support.servers import serve_app
from tests.support.sse import read_events


def logger_into(buffer: LogBuffer, name: str = "test.exporter") -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.handlers = [buffer]
    return logger


def test_buffer_keeps_the_newest_lines_with_increasing_seq_and_unique_times() -> None:
    buffer = LogBuffer(capacity=5)
    log = logger_into(buffer)
    for i in range(8):
        log.warning("line %d", i)
    lines = buffer.since(0)
    assert [line.message for line in lines] == [f"line {i}" for i in range(3, 8)]
    assert [line.seq for line in lines] == [4, 5, 6, 7, 8]
    times = [line.ts_ms for line in lines]
    assert times == sorted(set(times))  # unique even within one millisecond


def test_level_and_text_filters() -> None:
    buffer = LogBuffer()
    log = logger_into(buffer)
    log.info("collection done source=host")
    log.warning("slow collection source=containers")
    log.error("docker engine gone")
    assert [line.level for line in buffer.since(0, level="warning")] == ["warning", "error"]
    assert [line.message for line in buffer.since(0, query="SOURCE=")] == [
        "collection done source=host",
        "slow collection source=containers",
    ]
    assert [line.seq for line in buffer.since(2)] == [3]


def test_secrets_never_reach_the_buffer() -> None:
    buffer = LogBuffer(secrets=["hunter2-token"])
    log = logger_into(buffer)
    log.warning("auth failed with hunter2-token from 10.0.0.1")
    log.warning("Authorization: Bearer abc.def.ghi rejected")
    log.warning("connecting to http://user:pa55@db:8086 token=xyz password: p4ss")
    text = " ".join(line.message for line in buffer.since(0))
    for secret in ("hunter2-token", "abc.def.ghi", "pa55", "xyz", "p4ss"):
        assert secret not in text
    assert redact("token=abc&x=1") == "token=***&x=1"


ExporterLogs = tuple[str, LogBuffer, logging.Logger]  # base URL, the buffer, a logger into it


@pytest.fixture
async def exporter_logs() -> AsyncIterator[ExporterLogs]:
    buffer = LogBuffer()
    log = logger_into(buffer, "test.http")
    app = web.Application(middlewares=[auth_middleware(AuthSettings(bearer_token="t"), "x")])
    add_log_routes(app, buffer)
    async with serve_app(app) as base:
        yield base, buffer, log


AUTH = {"Authorization": "Bearer t"}


async def test_logs_endpoint_returns_json_lines_after_a_sequence(
    exporter_logs: ExporterLogs,
) -> None:
    base, buffer, log = exporter_logs
    for i in range(3):
        log.warning("event %d", i)
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.get(f"{base}/logs", params={"after": "1"}) as response:
            assert response.status == 200
            assert response.headers[INSTANCE_HEADER] == buffer.instance
            rows = [json.loads(r) for r in (await response.text()).splitlines()]
        assert [r["message"] for r in rows] == ["event 1", "event 2"]
        async with session.get(f"{base}/logs", params={"level": "loud"}) as response:
            assert response.status == 400
    async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{base}/logs") as response:
        assert response.status == 401


async def test_stream_resumes_from_last_event_id_without_loss_or_repeat(
    exporter_logs: ExporterLogs,
) -> None:
    base, _, log = exporter_logs
    log.warning("before 1")
    log.warning("before 2")
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.get(f"{base}/logs/stream") as response:
            first = await read_events(response, 2)
        assert [e[1]["message"] for e in first] == ["before 1", "before 2"]
        # lines logged while nobody listens arrive on the next connection, once
        log.warning("while away 1")
        log.warning("while away 2")
        async with session.get(
            f"{base}/logs/stream", headers={"Last-Event-ID": first[-1][0]}
        ) as response:
            task = asyncio.create_task(read_events(response, 3))
            log.warning("live")
            second = await task
    assert [e[1]["message"] for e in second] == ["while away 1", "while away 2", "live"]


async def test_stream_from_another_instance_starts_over(exporter_logs: ExporterLogs) -> None:
    base, buffer, log = exporter_logs
    log.warning("first line of this run")
    async with (
        aiohttp.ClientSession(headers=AUTH) as session,
        session.get(
            f"{base}/logs/stream", headers={"Last-Event-ID": "oldinstance:999"}
        ) as response,
    ):
        (event,) = await read_events(response, 1)
    assert event[1]["message"] == "first line of this run"
    assert event[0] == f"{buffer.instance}:1"
