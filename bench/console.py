"""Benchmark the console in Chromium (Debian's chromium through Playwright); prints one table.

Run: `.venv/bin/python -m bench.console [--hosts 200] [--runs 5]`. `fleetpulse up` scrapes
`--hosts` synthetic targets (tests/console/harness.py) over a store that already holds eight
days of one host's history (1 min points, rolled up as the collector does). Figures, each the
median of `--runs`:

- fleet page, N hosts: from navigation start to the table and its sparklines drawn (the view
  marks `main[data-drawn]` after drawing), target ≤ 1 s;
- host page, 7 days: from the 7d click to every chart drawn, the API's answers included,
  target ≤ 500 ms;
- bytes per chart: the CPU history answer at 1 h, 24 h and 7 d; the chart asks about one point
  per pixel of its width (560), so no answer grows with the range (the 7 d one holds fewer:
  the hourly tier has one point an hour);
- console JS + CSS: bytes of every /static/ file but the charting library (uPlot) the fleet,
  host, logs and alerts pages loaded, uncompressed (the server sends them so), target ≤ 100 KB.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

# bench/ holds scripts named like our packages (this file is console.py): put the repository,
# not this folder, first on the path
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

from playwright.async_api import Page, Response  # noqa: E402

from bench.table import print_figures  # noqa: E402
from collector.storage.sqlite import SqliteStorage  # noqa: E402
from fleetpulse.core.samples import Sample, make_labels  # noqa: E402
from fleetpulse.core.tiers import DAY_MS, HOUR_MS, RetentionSettings  # noqa: E402
from fleetpulse.core.timeutil import now_ms  # noqa: E402
from tests.console.harness import (  # noqa: E402
    Usage,
    api_json,
    launch,
    running_up,
    serve_fleet,
    up_config,
)
from tests.support.poll import eventually  # noqa: E402

HISTORY_HOST = "bench-000"
HISTORY_DAYS = 8
HISTORY_STEP_MS = 60_000
# the series the host page draws, by metric and the one label it splits them by
HISTORY_SERIES: tuple[tuple[str, dict[str, str]], ...] = (
    ("host_cpu_usage_percent", {}),
    ("host_memory_usage_percent", {}),
    ("host_disk_usage_percent", {"mountpoint": "/", "device": "sda", "fstype": "ext4"}),
    ("host_disk_usage_percent", {"mountpoint": "/data", "device": "sdb", "fstype": "ext4"}),
    ("network_receive_bytes_total", {"interface": "eth0"}),
    ("network_transmit_bytes_total", {"interface": "eth0"}),
    ("host_disk_read_bytes_total", {"device": "sda"}),
    ("host_disk_written_bytes_total", {"device": "sda"}),
)
DRAWN = "Number(document.getElementById('main').dataset.drawn || 0)"


def gauge(minute: int, around: float, period: int) -> float:
    """A day-like wave around `around` percent, with a little jitter, kept within 0-100."""
    wave = 9 * math.sin(2 * math.pi * minute / period) + 3 * math.sin(minute * 0.37)
    return min(100.0, max(0.0, around + wave))


async def fill_history(
    path: Path,
    host: str = HISTORY_HOST,
    days: int = HISTORY_DAYS,
    levels: dict[str, float] | None = None,
) -> None:
    """`days` of one host at one point a minute, with the hourly and daily rollups the
    collector would have made by now; each gauge waves around its `levels` entry."""
    store = await SqliteStorage.open(path, RetentionSettings())
    end = now_ms() // HISTORY_STEP_MS * HISTORY_STEP_MS
    first = end - days * DAY_MS
    totals: dict[str, float] = {}
    batch: list[Sample] = []
    for ts in range(first, end, HISTORY_STEP_MS):
        minute = (ts - first) // HISTORY_STEP_MS
        for n, (metric, extra) in enumerate(HISTORY_SERIES):
            labels = make_labels({"host": host, "job": "fleetpulse", **extra})
            if metric.endswith("_total"):
                # bytes a minute, busier by day
                totals[metric] = totals.get(metric, 0.0) + 60 * 1000 * gauge(minute, 30, 1440)
                value = totals[metric]
            else:
                value = gauge(minute, (levels or {}).get(metric, 30.0 + 4 * n), 180 + 40 * n)
            batch.append(Sample(metric, labels, value, ts))
        if len(batch) >= 50_000:
            await store.write(batch)
            batch = []
    await store.write(batch)
    for hour in range(first // HOUR_MS * HOUR_MS, end - HOUR_MS, HOUR_MS):
        await store.rollup("hourly", hour)
    for day in range(first // DAY_MS * DAY_MS, end - DAY_MS, DAY_MS):
        await store.rollup("daily", day)
    await store.close()


async def fleet_load_ms(page: Page, base: str) -> float:
    await page.goto("about:blank")
    await page.goto(f"{base}/#/")
    await page.wait_for_function(
        f"() => {DRAWN} > 0 && document.querySelectorAll('tr[data-host]').length > 0"
    )
    return float(await page.evaluate(f"() => {DRAWN} - performance.timeOrigin"))


async def host_7d_ms(page: Page, base: str) -> float:
    await page.goto("about:blank")
    await page.goto(f"{base}/#/host/{HISTORY_HOST}")
    await page.wait_for_function(f"() => {DRAWN} > 0")
    clicked = float(
        await page.evaluate(
            "() => { const t = Date.now();"
            " document.querySelector('button[data-range=\"7d\"]').click(); return t; }"
        )
    )
    await page.wait_for_function(f"() => {DRAWN} >= {clicked}")
    return float(await page.evaluate(f"() => {DRAWN}")) - clicked


async def chart_bytes(page: Page, base: str, preset: str) -> tuple[int, int]:
    """The CPU chart's history answer for a range preset: (bytes, points)."""
    await page.goto(f"{base}/#/host/{HISTORY_HOST}")
    await page.wait_for_function(f"() => {DRAWN} > 0")
    async with page.expect_response(
        lambda r: "metric=host_cpu_usage_percent" in r.url and "/hosts/" in r.url
    ) as answer:
        await page.locator(f'button[data-range="{preset}"]').click()
    response = await answer.value
    body = await response.body()
    doc = await response.json()
    return len(body), sum(len(s["points"]) for s in doc["series"])


async def console_bytes(page: Page, base: str) -> dict[str, int]:
    """Every /static/ file the pages load, by path, without the charting library."""
    seen: dict[str, int] = {}
    pending: list[asyncio.Task[None]] = []

    async def record(response: Response) -> None:
        path = "/" + response.url.split("://", 1)[-1].split("/", 1)[-1]
        if response.status != 200:
            return  # a 304 or redirect carries no body
        if path.startswith("/static/") and not path.startswith("/static/vendor/"):
            seen[path] = len(await response.body())

    page.on("response", lambda r: pending.append(asyncio.create_task(record(r))))
    for view in ("#/", f"#/host/{HISTORY_HOST}", f"#/host/{HISTORY_HOST}/logs", "#/alerts"):
        await page.goto("about:blank")
        await page.goto(f"{base}/{view}")
        await page.wait_for_load_state("networkidle")
    await asyncio.gather(*pending)
    return seen


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f})"


async def run(hosts: int, runs: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    names = [f"bench-{i:03d}" for i in range(hosts)]
    usages = {
        name: Usage(cpu=(i * 37) % 100, memory=(i * 53) % 100, disk={"/": (i * 71) % 100})
        for i, name in enumerate(names)
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        await fill_history(work / "data" / "metrics.db")
        async with serve_fleet(usages) as fleet:
            config = up_config(fleet).replace(
                "interval: 1s\n  timeout: 1s", "interval: 5s\n  timeout: 4s"
            )
            async with running_up(work, config) as up:

                async def all_seen() -> bool:
                    doc = await api_json(up.base, "/api/v1/hosts")
                    return sum(1 for h in doc["hosts"] if h["cpu"] is not None) >= hosts

                await eventually(all_seen, f"{hosts} hosts scraped", within=120, every=1)
                async with launch() as browser:
                    context = await browser.new_context(viewport={"width": 1280, "height": 900})
                    page = await context.new_page()
                    await fleet_load_ms(page, up.base)  # warm-up: caches, first queries
                    fleet_ms = [await fleet_load_ms(page, up.base) for _ in range(runs)]
                    rows.append(
                        (f"fleet page, {hosts} hosts: load to fully drawn", median(fleet_ms))
                    )
                    await host_7d_ms(page, up.base)
                    host_ms = [await host_7d_ms(page, up.base) for _ in range(runs)]
                    rows.append(
                        ("host page, 7 days: API answers + all charts drawn", median(host_ms))
                    )
                    for preset in ("1h", "24h", "7d"):
                        size, points = await chart_bytes(page, up.base, preset)
                        rows.append(
                            (
                                f"CPU chart bytes, {preset} (560 px wide)",
                                f"{size:,} B, {points} points",
                            )
                        )
                    await context.close()
                    # a fresh context: nothing cached, so every file comes with its body
                    context = await browser.new_context(viewport={"width": 1280, "height": 900})
                    files = await console_bytes(await context.new_page(), up.base)
                    total = sum(files.values())
                    rows.append(
                        (
                            "console JS + CSS transferred, without uPlot",
                            f"{total / 1024:.1f} KB in {len(files)} files (uncompressed)",
                        )
                    )
                    await context.close()
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=200, help="synthetic targets")
    parser.add_argument("--runs", type=int, default=5, help="measurements per figure")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.hosts, args.runs))
    print_figures(rows)


if __name__ == "__main__":
    main()
