"""Real receivers on loopback for notification tests: an HTTP recorder and an SMTP server.

The HTTP recorder answers every POST with 200 "ok" (what Slack's webhook answers) and keeps
the request; Apprise's json://, Slack and Discord plugins all post to it. The SMTP server is
aiosmtpd, so `mailto://` goes through a real SMTP conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, TypeVar

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.servers import serve_app


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    text: str  # the title and body as the service got them, flattened
    at: float  # time.monotonic() on arrival


def flatten(payload: Any) -> str:
    """All strings inside a JSON payload, joined: titles and bodies wherever a plugin put them."""
    if isinstance(payload, dict):
        return "\n".join(flatten(v) for v in payload.values())
    if isinstance(payload, list):
        return "\n".join(flatten(v) for v in payload)
    return payload if isinstance(payload, str) else ""


@dataclass
class HttpRecorder:
    base: str = ""
    received: list[Received] = field(default_factory=list)
    # paths (prefixes) answered 503, as a channel whose service is down; kept in `refused`
    failing: set[str] = field(default_factory=set)
    refused: list[Received] = field(default_factory=list)

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path.startswith(path)]

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.text()
        try:
            text = flatten(json.loads(raw))
        except ValueError:
            text = raw
        got = Received(request.path, text, time.monotonic())
        if any(request.path.startswith(path) for path in self.failing):
            self.refused.append(got)
            return web.Response(status=503, text="service unavailable")
        self.received.append(got)
        return web.Response(text="ok")


R = TypeVar("R", bound="HttpRecorder")


def http_recorder() -> contextlib.AbstractAsyncContextManager[HttpRecorder]:
    return serve_recorder(HttpRecorder())


@asynccontextmanager
async def serve_recorder(recorder: R) -> AsyncIterator[R]:
    """Serve `recorder` (an HttpRecorder or a subclass) on a free loopback port."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", recorder.handle)
    async with serve_app(app) as base:
        recorder.base = base
        yield recorder


@dataclass
class SmtpRecorder:
    port: int = 0
    messages: list[Message] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(email.message_from_bytes(content))
        self.arrivals.append(time.monotonic())
        return "250 Message accepted for delivery"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def url(self) -> str:
        return (
            f"mailto://localhost:{self.port}?smtp=127.0.0.1"
            "&from=fleetpulse@example.com&to=ops@example.com"
        )


@asynccontextmanager
async def smtp_recorder() -> AsyncIterator[SmtpRecorder]:
    recorder = SmtpRecorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(recorder, hostname="localhost"), "127.0.0.1", 0)
    recorder.port = server.sockets[0].getsockname()[1]
    try:
        yield recorder
    finally:
        server.close()
        await server.wait_closed()
