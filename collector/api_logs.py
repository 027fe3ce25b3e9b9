"""Agent logs in the API: `/api/v1/hosts/{host}/logs` and `…/logs/stream`, from storage.

The stream goes through the collector, so a person needs no network path to every host, and
lines from a host that went down stay readable. A host never scraped is a 404, as in history.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from collector.api_context import CONTEXT, unknown_host
from fleetpulse.core.httpapi import BadParameter, time_param
from fleetpulse.core.selector import Selector, make_matcher
from fleetpulse.core.sessions import signed_out
from fleetpulse.core.storage import AGENT_LOGS, Event
from fleetpulse.core.timeutil import format_time, now_ms

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
STREAM_POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0


def line_json(event: Event) -> dict[str, Any]:
    labels = dict(event.labels)
    return {
        "ts": event.ts_ms,
        "time": format_time(event.ts_ms, millis=True),
        "level": labels.get("level", ""),
        "logger": labels.get("logger", ""),
        "message": event.field("message"),
        "seq": int(float(event.field("seq", 0))),
    }


def filters(request: web.Request) -> tuple[str | None, str | None]:
    level = (request.query.get("level") or "").lower() or None
    if level is not None and level not in LEVELS:
        raise BadParameter("level", f"expected one of {', '.join(LEVELS)}")
    return level, request.query.get("q") or None


def keep(line: dict[str, Any], level: str | None, query: str | None) -> bool:
    if level is not None and LEVELS.get(line["level"], 0) < LEVELS[level]:
        return False
    if query:
        needle = query.lower()
        return needle in str(line["message"]).lower() or needle in str(line["logger"]).lower()
    return True


def host_selector(host: str) -> Selector:
    return Selector(AGENT_LOGS, (make_matcher("host", "=", host),))


async def host_logs(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    host = request.match_info["host"]
    now = now_ms()
    start = time_param(request, "since", "-1h", now)
    try:
        limit = int(request.query.get("limit", "1000"))
    except ValueError:
        raise BadParameter("limit", "expected a whole number") from None
    level, query = filters(request)
    if (missing := await unknown_host(ctx.storage, host)) is not None:
        return missing
    events = await ctx.storage.query_events(AGENT_LOGS, start, now, host_selector(host), 100_000)
    lines = [line for line in map(line_json, events) if keep(line, level, query)]
    return web.json_response({"host": host, "lines": lines[-max(1, min(limit, 100_000)) :]})


async def host_logs_stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events; `Last-Event-ID` (a line's time in ms) resumes without repeats."""
    ctx = request.app[CONTEXT]
    host = request.match_info["host"]
    level, query = filters(request)
    last_id = request.headers.get("Last-Event-ID", "")
    cursor = int(last_id) if last_id.isdigit() else time_param(request, "since", "-5m") - 1
    if (missing := await unknown_host(ctx.storage, host)) is not None:
        return missing
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    quiet = 0.0
    try:
        while not signed_out(request):
            events = await ctx.storage.query_events(
                AGENT_LOGS, cursor + 1, now_ms() + 60_000, host_selector(host), 1000
            )
            for event in events:
                cursor = max(cursor, event.ts_ms)
                line = line_json(event)
                if keep(line, level, query):
                    payload = json.dumps(line)
                    await response.write(
                        f"id: {event.ts_ms}\nevent: log\ndata: {payload}\n\n".encode()
                    )
            if events:
                quiet = 0.0
                continue
            await asyncio.sleep(STREAM_POLL_SECONDS)
            quiet += STREAM_POLL_SECONDS
            if quiet >= HEARTBEAT_SECONDS:
                await response.write(b": keep-alive\n\n")
                quiet = 0.0
    except ConnectionResetError:
        pass  # the reader went away
    return response


def add_log_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/hosts/{host}/logs", host_logs)
    app.router.add_get("/api/v1/hosts/{host}/logs/stream", host_logs_stream)
