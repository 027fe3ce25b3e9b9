"""The alert endpoints of the HTTP API: active alerts and alert history, read from storage.

Both read only the `alert_events` measurement, so they answer the same whether the engine
runs inside `fleetpulse up` or as its own `fleetpulse alerting` process.
"""

from __future__ import annotations

from aiohttp import web

from alerting.history import active_alerts, query_history
from fleetpulse.core.httpapi import STORAGE, BadParameter, time_param
from fleetpulse.core.timeutil import now_ms

MAX_EVENTS = 10_000


async def alerts(request: web.Request) -> web.Response:
    storage = request.app[STORAGE]
    return web.json_response({"alerts": await active_alerts(storage, now_ms())})


async def alert_history(request: web.Request) -> web.Response:
    now = now_ms()
    start = time_param(request, "start", "-24h", now)
    end = time_param(request, "end", "now", now)
    if start >= end:
        raise BadParameter("start", "must be before end")
    host = request.query.get("host") or None
    limit_text = request.query.get("limit", str(MAX_EVENTS))
    if not limit_text.isdigit() or not 0 < int(limit_text) <= MAX_EVENTS:
        raise BadParameter("limit", f"expected a whole number from 1 to {MAX_EVENTS}")
    events = await query_history(request.app[STORAGE], start, end, host, int(limit_text))
    return web.json_response({"events": events})


def add_alert_routes(app: web.Application) -> None:
    """Register `/api/v1/alerts` and `/api/v1/alerts/history?start=&end=&host=&limit=`."""
    app.router.add_get("/api/v1/alerts", alerts)
    app.router.add_get("/api/v1/alerts/history", alert_history)
