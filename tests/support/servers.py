"""Real HTTP servers on loopback for tests: synthetic exporters that misbehave on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from fleetpulse.core.listen import Listen
from fleetpulse.core.site import start_site

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 and a free port; yields the base URL."""
    runner, bound = await start_site(app, Listen("127.0.0.1", 0), shutdown_timeout=0.1)
    try:
        yield f"http://127.0.0.1:{bound.port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serve(routes: dict[str, Handler]) -> AsyncIterator[str]:
    """Serve GET `routes` on 127.0.0.1 and a free port; yields the base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    async with serve_app(app) as base:
        yield base


def static_exposition(body: str, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, status=status, content_type="text/plain")

    return handler


def hanging(seconds: float) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(seconds)
        return web.Response(text="late 1\n")

    return handler


def endless_body(chunk: bytes = b"# filler line that never ends\n" * 1000) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            while True:
                await response.write(chunk)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    return handler


def free_port() -> int:
    """A loopback port with nothing listening (bound, then released): one to listen on, or
    a dead target."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
