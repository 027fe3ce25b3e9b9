"""`/logs` (JSON lines) and `/logs/stream` (server-sent events) over the exporter's LogBuffer.

Both sit behind the exporter's auth middleware. A stream resumes from `Last-Event-ID`
(`<instance>:<seq>`); after an exporter restart the instance differs and it starts over.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from exporter.logbuffer import LEVELS, LogBuffer, LogLine, line_matches
from fleetpulse.core.headers import INSTANCE_HEADER

BUFFER_KEY = web.AppKey("log_buffer", LogBuffer)
HEARTBEAT_SECONDS = 15.0


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def _filters(request: web.Request) -> tuple[int, str | None, str | None, int] | web.Response:
    try:
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", "1000"))
    except ValueError:
        return _bad("after and limit must be whole numbers")
    level = request.query.get("level") or None
    if level is not None and level.lower() not in LEVELS:
        return _bad(f"level must be one of {', '.join(LEVELS)}")
    return after, level.lower() if level else None, request.query.get("q") or None, limit


async def logs(request: web.Request) -> web.Response:
    parsed = _filters(request)
    if isinstance(parsed, web.Response):
        return parsed
    after, level, query, limit = parsed
    buffer = request.app[BUFFER_KEY]
    lines = buffer.since(after, level, query, max(1, min(limit, 10_000)))
    body = "".join(json.dumps(line.as_dict()) + "\n" for line in lines)
    return web.Response(
        text=body,
        content_type="application/x-ndjson",
        headers={INSTANCE_HEADER: buffer.instance},
    )


def resume_point(request: web.Request, buffer: LogBuffer, after: int) -> int:
    last_id = request.headers.get("Last-Event-ID", "")
    instance, _, seq = last_id.partition(":")
    if last_id and seq.isdigit():
        return int(seq) if instance == buffer.instance else 0
    return after


def sse(line: LogLine, instance: str) -> bytes:
    return f"id: {instance}:{line.seq}\nevent: log\ndata: {json.dumps(line.as_dict())}\n\n".encode()


async def logs_stream(request: web.Request) -> web.StreamResponse:
    parsed = _filters(request)
    if isinstance(parsed, web.Response):
        return parsed
    after, level, query, _ = parsed
    buffer = request.app[BUFFER_KEY]
    cursor = resume_point(request, buffer, after)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            INSTANCE_HEADER: buffer.instance,
        }
    )
    await response.prepare(request)
    try:
        while True:
            # read every new line, but send only the ones the filters keep
            fresh = buffer.since(cursor, None, None, 1000)
            for line in fresh:
                cursor = line.seq
                if line_matches(line, level, query):
                    await response.write(sse(line, buffer.instance))
            if not fresh:
                try:
                    async with asyncio.timeout(HEARTBEAT_SECONDS):
                        await buffer.wait(cursor)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
    except ConnectionResetError:
        pass  # the client went away; nothing to clean up
    return response


def add_log_routes(app: web.Application, buffer: LogBuffer) -> None:
    app[BUFFER_KEY] = buffer
    app.router.add_get("/logs", logs)
    app.router.add_get("/logs/stream", logs_stream)
