"""The HTTP API as `fleetpulse collector` serves it (with the alert routes), on loopback, over
a store the test fills: what the `serve_api` fixture hands out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry

from alerting.api import add_alert_routes
from collector.api import make_api
from collector.api_context import ApiContext
from fleetpulse.core.httpauth import AuthSettings
from fleetpulse.core.listen import Listen
from fleetpulse.core.site import start_site
from fleetpulse.core.storage import Storage
from fleetpulse.core.thresholds import Thresholds


class ServeApi(Protocol):
    async def __call__(
        self,
        thresholds: Callable[[], Thresholds] = Thresholds,
        *,
        token: str = "",
        scrape_interval: float = 15.0,
    ) -> str:
        """Start the API; the base URL. `token`: the bearer token it asks for, if any."""
        ...


@asynccontextmanager
async def api_server(store: Storage) -> AsyncIterator[ServeApi]:
    """A starter of APIs over `store`; every API it started stops when the block ends."""
    runners: list[web.AppRunner] = []

    async def serve(
        thresholds: Callable[[], Thresholds] = Thresholds,
        *,
        token: str = "",
        scrape_interval: float = 15.0,
    ) -> str:
        ctx = ApiContext(store, thresholds, scrape_interval, CollectorRegistry())
        runner, bound = await start_site(
            make_api(ctx, AuthSettings(bearer_token=token), [add_alert_routes]),
            Listen("127.0.0.1", 0),
            shutdown_timeout=0.1,
        )
        runners.append(runner)
        return f"http://127.0.0.1:{bound.port}"

    try:
        yield serve
    finally:
        for runner in runners:
            await runner.cleanup()
