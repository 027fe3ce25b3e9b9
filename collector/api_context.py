"""What every API handler shares: the context (storage, thresholds, registry) and errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry

from alerting.thresholds import Thresholds
from collector.storage.port import Storage
from fleetpulse.selector import Selector
from fleetpulse.timeutil import parse_time


class BadParameter(ValueError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")


@dataclass(frozen=True, slots=True)
class ApiContext:
    storage: Storage
    thresholds: Callable[[], Thresholds]
    scrape_interval: float
    registry: CollectorRegistry


CONTEXT = web.AppKey("context", ApiContext)


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def unknown_host(storage: Storage, host: str) -> web.Response | None:
    """The 404 for a host that was never scraped (no `up` sample at all), else None."""
    if await storage.last_seen(host) is None and not await storage.query_latest(
        Selector("up").with_matcher("host", host), 0
    ):
        return error(404, f"unknown host {host!r}; GET /api/v1/hosts lists the known hosts")
    return None


def time_param(request: web.Request, name: str, default: str, now: int | None = None) -> int:
    """A time query parameter in ms (RFC 3339, relative, unix seconds or now); a 400 if bad."""
    try:
        return parse_time(request.query.get(name, default), now)
    except ValueError as exc:
        raise BadParameter(name, str(exc)) from None
