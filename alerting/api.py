"""The alert endpoints of the HTTP API: active alerts and alert history, read from storage.

Both read only the `alert_events` measurement, so they answer the same whether the engine
runs inside `fleetpulse up` or as its own `fleetpulse alerting` process.
"""

from __future__ import annotations

from aiohttp import web

from alerting.history import active_alerts, query_history
from collector.api_context import CONTEXT, BadParameter
from fleetpulse.timeutil import now_ms, parse_time

MAX_EVENTS = 10_000


def _time(request: web.Request, name: str, default: str, now: int) -> int:
    try:
        return parse_time(request.query.get(name, default), now)
    except ValueError as exc:
        raise BadParameter(name, str(exc)) from None


async def alerts(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    return web.json_response({"alerts": await active_alerts(ctx.storage, now_ms())})


async def alert_history(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    now = now_ms()
    start = _time(request, "start", "-24h", now)
    end = _time(request, "end", "now", now)
    if start >= end:
        raise BadParameter("start", "must be before end")
    host = request.query.get("host") or None
    limit_text = request.query.get("limit", str(MAX_EVENTS))
    if not limit_text.isdigit() or not 0 < int(limit_text) <= MAX_EVENTS:
        raise BadParameter("limit", f"expected a whole number from 1 to {MAX_EVENTS}")
    events = await query_history(ctx.storage, start, end, host, int(limit_text))
    return web.json_response({"events": events})


def add_alert_routes(app: web.Application) -> None:
    """Register `/api/v1/alerts` and `/api/v1/alerts/history?start=&end=&host=&limit=`."""
    app.router.add_get("/api/v1/alerts", alerts)
    app.router.add_get("/api/v1/alerts/history", alert_history)
