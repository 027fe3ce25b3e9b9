"""`/api/v1/hosts/{host}/thresholds`: a host's effective levels, and its overrides set (PUT)
or reset (DELETE) in the store, where every process of a deployment reads them."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from collector.api_context import CONTEXT, ApiContext, unknown_host
from fleetpulse.core.overrides import (
    InvalidOverride,
    in_force,
    override_event,
    parse_override,
    read_overrides,
)
from fleetpulse.core.storage import THRESHOLD_OVERRIDES
from fleetpulse.core.thresholds import THRESHOLD_METRICS, HostLevels, Thresholds
from fleetpulse.core.timeutil import now_ms

log = logging.getLogger(__name__)
PATH = "/api/v1/hosts/{host}/thresholds"


def editable(thresholds: Thresholds) -> list[str]:
    """The keys an override may set: the usage percentages (cpu, memory, disk) the file
    defines; the others (bytes per second, a container's share) stay the file's."""
    known = set(thresholds.keys())
    return [key for key in THRESHOLD_METRICS if key in known]


async def effective(ctx: ApiContext, now: int, host: str | None = None) -> Thresholds:
    """thresholds.yaml with the store's overrides (of every host, or of `host`) over it."""
    return ctx.thresholds().with_overrides(in_force(await read_overrides(ctx.storage, now, host)))


def _answer(thresholds: Thresholds, host: str) -> web.Response:
    levels, customized = thresholds.for_host(host)
    return web.json_response(
        {
            "host": host,
            "thresholds": {key: level.as_dict() for key, level in levels.items()},
            "defaults": {key: level.as_dict() for key, level in thresholds.from_file(host).items()},
            "overridden": list(thresholds.overridden(host)),
            "customized": customized,
        }
    )


async def _save(ctx: ApiContext, host: str, levels: HostLevels) -> web.Response:
    """Write the host's new overrides and answer with them: not read back, since a store may
    hold writes back a moment (InfluxDB's batching)."""
    await ctx.storage.write_events(THRESHOLD_OVERRIDES, [override_event(host, levels, now_ms())])
    log.info("threshold overrides saved host=%s keys=%s", host, ",".join(k for k, _ in levels))
    overrides = {host: levels} if levels else {}
    return _answer(ctx.thresholds().with_overrides(overrides), host)


async def get_thresholds(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    host = request.match_info["host"]
    return await unknown_host(ctx.storage, host) or _answer(
        await effective(ctx, now_ms(), host), host
    )


async def put_thresholds(request: web.Request) -> web.Response:
    """Replaces the host's overrides with the body's; a key left out follows the file."""
    ctx = request.app[CONTEXT]
    host = request.match_info["host"]
    missing = await unknown_host(ctx.storage, host)
    if missing is not None:
        return missing
    try:
        body = json.loads(await request.text())
    except ValueError as exc:
        return web.json_response({"error": f"body is not JSON: {exc}", "field": ""}, status=400)
    try:
        levels = parse_override(body, editable(ctx.thresholds()))
    except InvalidOverride as exc:
        return web.json_response({"error": f"{exc.field}: {exc}", "field": exc.field}, status=400)
    return await _save(ctx, host, levels)


async def delete_thresholds(request: web.Request) -> web.Response:
    """Resets the host to thresholds.yaml."""
    ctx = request.app[CONTEXT]
    host = request.match_info["host"]
    missing = await unknown_host(ctx.storage, host)
    if missing is not None:
        return missing
    return await _save(ctx, host, ())


def add_threshold_routes(app: web.Application) -> None:
    app.router.add_get(PATH, get_thresholds)
    app.router.add_put(PATH, put_thresholds)
    app.router.add_delete(PATH, delete_thresholds)
