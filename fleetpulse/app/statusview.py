"""`fleetpulse status`: the fleet at a glance in a terminal, coloured against thresholds."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from fleetpulse.app.apiclient import ApiClient, ApiError, ApiTarget, ApiUnreachable
from fleetpulse.core.thresholds import THRESHOLD_METRICS

SPARK = "▁▂▃▄▅▆▇█"
RESET, GREEN, YELLOW, RED, DIM, BOLD = (
    "\x1b[0m",
    "\x1b[32m",
    "\x1b[33m",
    "\x1b[31m",
    "\x1b[2m",
    "\x1b[1m",
)


def sparkline(values: Sequence[float], low: float = 0.0, high: float = 100.0) -> str:
    """One block character per value on a fixed 0-100 scale, so hosts compare at a glance."""
    if not values:
        return ""
    span = high - low or 1.0
    return "".join(
        SPARK[min(len(SPARK) - 1, max(0, int((v - low) / span * len(SPARK))))] for v in values
    )


def ago(iso: str | None, now: datetime) -> str:
    if not iso:
        return "never"
    seconds = int((now - datetime.fromisoformat(iso.replace("Z", "+00:00"))).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    if seconds < 172800:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def level_colour(value: float, thresholds: dict[str, float] | None) -> str:
    if not thresholds:
        return ""
    if value >= thresholds.get("critical", float("inf")):
        return RED
    if value >= thresholds.get("warning", float("inf")):
        return YELLOW
    return GREEN


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    colour: str = ""


def render_table(header: Sequence[str], rows: Sequence[Sequence[Cell]], colour: bool) -> str:
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell.text))
    lines = []
    head = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()
    lines.append(f"{BOLD}{head}{RESET}" if colour else head)
    for row in rows:
        parts = []
        for cell, width in zip(row, widths, strict=True):
            padded = cell.text.ljust(width)
            parts.append(f"{cell.colour}{padded}{RESET}" if colour and cell.colour else padded)
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def render_hosts(
    hosts: Sequence[dict[str, Any]],
    sparklines: dict[str, list[float]],
    alerts: dict[str, int] | None,
    colour: bool,
    now: datetime,
) -> str:
    header = ["HOST", "STATE", "LAST SEEN", "CPU", "MEMORY", "DISK", "CPU 1H", "FIRING"]
    rows = []
    for host in hosts:
        name = host["host"]
        mark = "*" if host.get("customized") else ""
        up = host.get("up", False)
        # None: the store failed to write its samples, so the API cannot tell
        state = Cell("up", GREEN) if up else Cell("?", YELLOW) if up is None else Cell("DOWN", RED)
        row = [Cell(name + mark), state, Cell(ago(host.get("last_seen"), now))]
        for key in THRESHOLD_METRICS:
            value = host.get(key)
            if value is None:
                row.append(Cell("-", DIM))
            else:
                row.append(
                    Cell(f"{value:.1f}%", level_colour(value, host.get("thresholds", {}).get(key)))
                )
        row.append(Cell(sparkline(sparklines.get(name, []))))
        count = None if alerts is None else alerts.get(name, 0)
        row.append(Cell("-" if count is None else str(count), RED if count else ""))
        rows.append(row)
    table = render_table(header, rows, colour)
    notes = []
    if any(h.get("customized") for h in hosts):
        notes.append("* thresholds customised for this host (thresholds.yaml or the console)")
    if not hosts:
        notes.append("no hosts yet: the collector has not scraped any target")
    return "\n".join([table, *notes])


def render_containers(host: str, containers: dict[str, dict[str, float]], colour: bool) -> str:
    header = ["CONTAINER", "STATE", "CPU", "MEMORY", "MEM %", "RESTARTS"]
    rows = []
    for name in sorted(containers):
        values = containers[name]
        running = values.get("container_up") == 1.0
        memory = values.get("container_memory_usage_bytes")
        rows.append(
            [
                Cell(name),
                Cell("running", GREEN) if running else Cell("stopped", RED),
                Cell(
                    f"{values['container_cpu_usage_percent']:.1f}%"
                    if "container_cpu_usage_percent" in values
                    else "-"
                ),
                Cell(f"{memory / 2**20:.0f} MiB" if memory is not None else "-"),
                Cell(
                    f"{values['container_memory_usage_percent']:.1f}%"
                    if "container_memory_usage_percent" in values
                    else "-"
                ),
                Cell(f"{values.get('container_restarts_total', 0):.0f}"),
            ]
        )
    if not rows:
        return f"no containers reported by {host} in the last 5 minutes"
    return f"Containers on {host}\n" + render_table(header, rows, colour)


@dataclass(frozen=True, slots=True)
class StatusData:
    hosts: list[dict[str, Any]]
    sparklines: dict[str, list[float]]
    alerts: dict[str, int] | None  # None: the API has no alert endpoints to ask
    containers: dict[str, dict[str, float]] | None  # only with --host
    store: dict[str, Any] | None = None  # the hosts answer's store health


def render_store(store: dict[str, Any] | None) -> str:
    """The line that says the store is degraded, and why; empty while it is fine."""
    if not store or store.get("status", "ok") == "ok":
        return ""
    lines = []
    for side in ("write", "read"):
        failure = store.get(side)
        if failure:
            lines.append(
                f"store DEGRADED: {side}s failing ({failure['cause']}): {failure['error']}"
            )
    return "\n".join(lines) or "store DEGRADED"


def render_status(data: StatusData, host: str | None, colour: bool, now: datetime) -> str:
    text = render_hosts(data.hosts, data.sparklines, data.alerts, colour, now)
    if degraded := render_store(data.store):
        text = f"{degraded}\n{text}"
    if host is not None and data.containers is not None:
        text += "\n\n" + render_containers(host, data.containers, colour)
    return text


async def latest_series(client: ApiClient, host: str, metric: str, since: str) -> list[Any]:
    doc = await client.get_json(
        f"/api/v1/hosts/{host}/metrics/history", {"metric": metric, "start": since}
    )
    series: list[Any] = doc.get("series", [])
    return series


async def cpu_sparkline(client: ApiClient, host: str) -> tuple[str, list[float]]:
    doc = await client.get_json(
        f"/api/v1/hosts/{host}/metrics/history",
        {"metric": "host_cpu_usage_percent", "start": "-1h", "step": "2m"},
    )
    points = doc["series"][0]["points"] if doc.get("series") else []
    return host, [p[1] for p in points]


async def active_alerts(client: ApiClient) -> dict[str, int] | None:
    try:
        active = await client.get_json("/api/v1/alerts")
    except ApiError:
        return None  # an API without the alert engine's endpoints: show "-"
    counts: dict[str, int] = {}
    for alert in active.get("alerts", []):
        if alert.get("state", "firing") != "firing":
            continue  # pending alerts have not met their `for` yet
        name = alert.get("labels", {}).get("host") or alert.get("host", "")
        counts[name] = counts.get(name, 0) + 1
    return counts


async def container_values(client: ApiClient, host: str) -> dict[str, dict[str, float]]:
    metrics = (
        "container_up",
        "container_cpu_usage_percent",
        "container_memory_usage_bytes",
        "container_memory_usage_percent",
        "container_restarts_total",
    )
    results = await asyncio.gather(*(latest_series(client, host, m, "-5m") for m in metrics))
    containers: dict[str, dict[str, float]] = {}
    for metric, series_list in zip(metrics, results, strict=True):
        for series in series_list:
            name = series["labels"].get("container", "?")
            if series["points"]:
                containers.setdefault(name, {})[metric] = series["points"][-1][1]
    return containers


async def store_health(client: ApiClient) -> dict[str, Any] | None:
    """The store's health as /healthz says it; None when that cannot be asked either."""
    try:
        health = await client.get_json("/healthz")
    except ApiError:
        return None
    store = health.get("store") if isinstance(health, dict) else None
    return store if isinstance(store, dict) else None


async def fetch_hosts(client: ApiClient) -> dict[str, Any]:
    """The hosts answer. A store that fails its reads too (a refused token, InfluxDB gone)
    fails it, and then the error leads with why, as the hosts answer would have said it."""
    try:
        answer: dict[str, Any] = await client.get_json("/api/v1/hosts")
    except ApiUnreachable:
        raise
    except ApiError as exc:
        degraded = render_store(await store_health(client))
        if not degraded:
            raise
        raise ApiError(f"{degraded}\n{exc}") from None
    return answer


async def fetch_status(client: ApiClient, host: str | None) -> StatusData:
    answer = await fetch_hosts(client)
    hosts: list[dict[str, Any]] = answer.get("hosts", [])
    if host is not None and host not in {h["host"] for h in hosts}:
        known = ", ".join(h["host"] for h in hosts) or "none yet"
        raise ApiError(f"unknown host {host!r}; known hosts: {known}")
    sparks = dict(await asyncio.gather(*(cpu_sparkline(client, h["host"]) for h in hosts)))
    alerts = await active_alerts(client)
    containers = await container_values(client, host) if host is not None else None
    return StatusData(hosts, sparks, alerts, containers, answer.get("store"))


async def run_status(
    target: ApiTarget, host: str | None, watch: float | None, out: TextIO = sys.stdout
) -> int:
    """Print the status once, or redraw it in place every `watch` seconds until Ctrl-C."""
    colour = out.isatty()
    async with ApiClient(target) as client:
        while True:
            data = await fetch_status(client, host)
            text = render_status(data, host, colour, datetime.now(UTC))
            if watch is not None and colour:
                out.write("\x1b[H\x1b[2J")  # home + clear: redraw in place
            out.write(text + "\n")
            out.flush()
            if watch is None:
                return 0
            await asyncio.sleep(watch)
