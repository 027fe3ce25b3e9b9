"""The alert endpoints of the HTTP API: active alerts, alert history and the loaded rules,
read from storage.

All read only the `alert_events` measurement, so they answer the same whether the engine
runs inside `fleetpulse up` or as its own `fleetpulse alerting` process.
"""

from __future__ import annotations

from aiohttp import web

from alerting.history import active_alerts, query_history
from alerting.published import latest_rules
from alerting.state import FIRING, PENDING
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


async def rules(request: web.Request) -> web.Response:
    """The rule set the engine published last, each rule with its pending and firing
    instances; `loaded` is null while no engine has published one."""
    storage = request.app[STORAGE]
    now = now_ms()
    published = await latest_rules(storage, now)
    if published is None:
        return web.json_response({"loaded": None, "rules": []})
    loaded, rule_list = published
    active = await active_alerts(storage, now)
    for rule in rule_list:
        mine = [a for a in active if a["alertname"] == rule["alert"]]
        rule["pending"] = sum(1 for a in mine if a["state"] == PENDING)
        rule["firing"] = sum(1 for a in mine if a["state"] == FIRING)
    return web.json_response({"loaded": loaded, "rules": rule_list})


def add_alert_routes(app: web.Application) -> None:
    """Register `/api/v1/alerts`, `/api/v1/alerts/history?start=&end=&host=&limit=` and
    `/api/v1/rules`."""
    app.router.add_get("/api/v1/alerts", alerts)
    app.router.add_get("/api/v1/alerts/history", alert_history)
    app.router.add_get("/api/v1/rules", rules)
