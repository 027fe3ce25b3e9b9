"""What every API handler shares: the context (storage, thresholds, registry) and errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry

from fleetpulse.core.httpapi import error
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import Storage
from fleetpulse.core.thresholds import Thresholds


@dataclass(frozen=True, slots=True)
class ApiContext:
    storage: Storage
    thresholds: Callable[[], Thresholds]
    scrape_interval: float
    registry: CollectorRegistry


CONTEXT = web.AppKey("context", ApiContext)


async def unknown_host(storage: Storage, host: str) -> web.Response | None:
    """The 404 for a host that was never scraped (no `up` sample at all), else None."""
    if await storage.last_seen(host) is None and not await storage.query_latest(
        Selector("up").with_matcher("host", host), 0
    ):
        return error(404, f"unknown host {host!r}; GET /api/v1/hosts lists the known hosts")
    return None
