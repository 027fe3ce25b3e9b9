"""The HTTP API: hosts with their latest usage, and metric history as JSON or CSV.

Every bad parameter is a 400 that names the parameter; an unknown host is a 404; a store
outage is a 503, with the store's health as /healthz shows it. Nothing here knows SQL or
Flux: it asks the storage port.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Sequence

from aiohttp import web
from prometheus_client.exposition import generate_latest

from collector.api_context import CONTEXT, ApiContext, unknown_host
from collector.api_logs import add_log_routes
from collector.api_thresholds import add_threshold_routes, effective
from fleetpulse.core.durations import parse_duration
from fleetpulse.core.httpapi import STORAGE, BadParameter, error, time_param
from fleetpulse.core.httpauth import AuthSettings, Handler, auth_middleware
from fleetpulse.core.login import add_login_routes
from fleetpulse.core.samples import Labels, Series, is_counter, label_value
from fleetpulse.core.selector import Selector, parse_selector
from fleetpulse.core.sessions import SESSIONS, Sessions
from fleetpulse.core.storage import (
    AGGREGATES,
    COUNTER_AGGREGATES,
    RangeQuery,
    StorageError,
    StorageUnavailable,
)
from fleetpulse.core.thresholds import THRESHOLD_METRICS
from fleetpulse.core.timeutil import format_time, now_ms

log = logging.getLogger(__name__)

MAX_POINTS = 11_000  # per series, as Prometheus caps a range query
HIDDEN_LABELS = ("host", "job")  # the host is the path; the job is the same for every series


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, f"{exc.reason}: {request.method} {request.path}")
    except BadParameter as exc:
        return error(400, f"bad parameter {exc}")
    except StorageUnavailable as exc:
        log.warning("storage unavailable path=%s error=%s", request.path, exc)
        return storage_error(request, 503, f"storage unavailable: {exc}; retry shortly")
    except StorageError as exc:
        log.error("storage error path=%s error=%s", request.path, exc)
        return storage_error(request, 500, f"storage error: {exc}")


def storage_error(request: web.Request, status: int, message: str) -> web.Response:
    """The error, with the store's health while it is degraded: a refused token or InfluxDB
    gone fails the reads too, and the hosts answer then still says why (`store`, as in a
    200 answer), instead of only that it failed."""
    ctx = request.app.get(CONTEXT)
    health = ctx.storage.health() if ctx is not None else None
    if health is None or health.ok:
        return error(status, message)
    return web.json_response({"error": message, "store": health.as_json()}, status=status)


async def hosts(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    now = now_ms()
    fresh_ms = int(ctx.scrape_interval * 3 * 1000)
    ups = await ctx.storage.query_latest(Selector("up"), 0)
    by_host: dict[str, list[tuple[int, float]]] = {}
    for latest in ups:
        by_host.setdefault(label_value(latest.labels, "host"), []).append(
            (latest.ts_ms, latest.value)
        )
    usage: dict[str, dict[str, float]] = {}
    for key, metric in THRESHOLD_METRICS.items():
        for latest in await ctx.storage.query_latest(Selector(metric), now - fresh_ms):
            host = label_value(latest.labels, "host")
            # a host with several filesystems is as full as its fullest one
            usage.setdefault(host, {})[key] = max(latest.value, usage.get(host, {}).get(key, 0.0))
    thresholds = await effective(ctx, now)
    health = ctx.storage.health()
    # a host whose fresh `up` samples the store may have failed to write is not down: unknown
    unknown = health.writes_missing(now - fresh_ms, now)
    out = []
    for host in sorted(by_host):
        up: bool | None = any(value == 1.0 and now - ts <= fresh_ms for ts, value in by_host[host])
        if not up and unknown:
            up = None
        last_seen = await ctx.storage.last_seen(host)
        levels, customized = thresholds.for_host(host)
        values = usage.get(host, {})
        out.append(
            {
                "host": host,
                "up": up,
                "last_seen": format_time(last_seen) if last_seen is not None else None,
                **{key: values.get(key) for key in THRESHOLD_METRICS},
                "thresholds": {key: level.as_dict() for key, level in levels.items()},
                "customized": customized,
            }
        )
    return web.json_response({"hosts": out, "store": health.as_json()})


def _shown_labels(labels: Labels) -> dict[str, str]:
    return {k: v for k, v in labels if k not in HIDDEN_LABELS}


def _csv(series: list[Series]) -> str:
    columns = sorted({k for s in series for k, _ in s.labels if k not in HIDDEN_LABELS})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["time", "host", *columns, "value"])
    for s in series:
        shown = _shown_labels(s.labels)
        cells = [shown.get(c, "") for c in columns]
        host = label_value(s.labels, "host")
        for ts, value in s.points:
            writer.writerow([format_time(ts, millis=True), host, *cells, repr(value)])
    return buffer.getvalue()


async def history(request: web.Request) -> web.Response:
    """One host's history (`/api/v1/hosts/{host}/metrics/history`), or every host's
    (`/api/v1/metrics/history`, series labelled with their host: the console's sparklines
    ask once for the whole fleet)."""
    ctx = request.app[CONTEXT]
    host = request.match_info.get("host")
    metric_text = request.query.get("metric", "")
    if not metric_text:
        raise BadParameter("metric", "required, e.g. metric=host_cpu_usage_percent")
    try:
        selector = parse_selector(metric_text)
    except ValueError as exc:
        raise BadParameter("metric", str(exc)) from None
    now = now_ms()
    start = time_param(request, "start", "-1h", now)
    end = time_param(request, "end", "now", now)
    if start >= end:
        raise BadParameter("start", "must be before end")
    step_ms = None
    if "step" in request.query:
        try:
            step_ms = int(parse_duration(request.query["step"]) * 1000)
        except ValueError as exc:
            raise BadParameter("step", str(exc)) from None
        if step_ms <= 0:
            raise BadParameter("step", "must be greater than 0")
        if (end - start) // step_ms > MAX_POINTS:
            raise BadParameter(
                "step", f"too small: more than {MAX_POINTS} points per series; use a larger step"
            )
    aggregate = request.query.get("aggregate", "mean")
    if aggregate not in AGGREGATES:
        raise BadParameter("aggregate", f"expected one of {', '.join(AGGREGATES)}")
    if aggregate in COUNTER_AGGREGATES and not is_counter(selector.metric):
        raise BadParameter(
            "aggregate", f"{aggregate} needs a counter (a metric name ending in _total)"
        )
    output = request.query.get("format", "")
    if output not in ("", "json", "csv"):
        raise BadParameter("format", "expected json or csv")
    wants_csv = output == "csv" or (not output and "text/csv" in request.headers.get("Accept", ""))

    if host is not None:
        if (missing := await unknown_host(ctx.storage, host)) is not None:
            return missing
        selector = selector.with_matcher("host", host)
    query = RangeQuery(selector, start, end, step_ms, aggregate)
    result = await ctx.storage.query_range(query)
    if wants_csv:
        filename = f"{host or 'fleet'}-{selector.metric}.csv"
        return web.Response(
            text=_csv(result.series),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return web.json_response(
        {
            "host": host,
            "metric": selector.metric,
            "tier": result.tier,
            "series": [
                {
                    "labels": _shown_labels(s.labels)
                    if host is not None
                    else {"host": label_value(s.labels, "host"), **_shown_labels(s.labels)},
                    "points": [[ts, v] for ts, v in s.points],
                }
                for s in result.series
            ],
        }
    )


async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves, with the store's state: `{"status": "ok"}` or
    `{"status": "degraded", "store": {...the failing side, its cause and error...}}`.

    Degraded is still 200, as Prometheus' /-/healthy is: this is what liveness probes ask,
    and restarting FleetPulse frees no disk and fixes no token."""
    health = request.app[CONTEXT].storage.health()
    if health.ok:
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "degraded", "store": health.as_json()})


async def own_metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[CONTEXT].registry)
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


def make_api(
    ctx: ApiContext,
    auth: AuthSettings,
    routes: Sequence[Callable[[web.Application], None]] = (),
) -> web.Application:
    """The API app; `routes` add other services' endpoints (the alert engine's), which read
    the store from `STORAGE`."""
    sessions = Sessions()  # the console's logins; a restart logs them out
    app = web.Application(
        middlewares=[auth_middleware(auth, "fleetpulse api", sessions=sessions), error_middleware]
    )
    app[CONTEXT] = ctx
    app[STORAGE] = ctx.storage
    app[SESSIONS] = sessions
    app.router.add_get("/api/v1/hosts", hosts)
    app.router.add_get("/api/v1/hosts/{host}/metrics/history", history)
    app.router.add_get("/api/v1/metrics/history", history)
    for add_routes in routes:
        add_routes(app)
    add_log_routes(app)
    add_login_routes(app, auth, sessions)
    add_threshold_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", own_metrics)
    return app
