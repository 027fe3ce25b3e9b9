"""The exporter's HTTP app: /metrics from the cache (with our identity header), /logs, /healthz,
optional auth (TLS: service.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from exporter.collect import ExpositionCache
from exporter.logbuffer import LogBuffer
from exporter.logs_http import add_log_routes
from fleetpulse import __version__
from fleetpulse.core.headers import EXPORTER_HEADER
from fleetpulse.core.httpauth import AuthSettings, auth_middleware

log = logging.getLogger(__name__)

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
CACHE_KEY = web.AppKey("cache", ExpositionCache)
IDENTITY = {EXPORTER_HEADER: __version__}  # tells a collector it may pull our /logs


def wants_openmetrics(accept: str) -> bool:
    return "application/openmetrics-text" in accept


async def metrics(request: web.Request) -> web.Response:
    cache = request.app[CACHE_KEY]
    if not cache.ready.is_set():
        # the first collection is still running; wait briefly rather than serve nothing
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await cache.ready.wait()
    if wants_openmetrics(request.headers.get("Accept", "")):
        body = await asyncio.to_thread(cache.openmetrics)
        return web.Response(body=body, headers={"Content-Type": OPENMETRICS_TYPE, **IDENTITY})
    return web.Response(body=cache.text(), headers={"Content-Type": TEXT_TYPE, **IDENTITY})


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def make_app(
    cache: ExpositionCache, auth: AuthSettings, logs: LogBuffer | None = None
) -> web.Application:
    app = web.Application(middlewares=[auth_middleware(auth, "fleetpulse exporter", log)])
    app[CACHE_KEY] = cache
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    if logs is not None:
        add_log_routes(app, logs)
    return app
