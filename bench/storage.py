"""Benchmark the embedded SQLite store; prints one table.

Run: `.venv/bin/python bench/storage.py [--series 200] [--hours 48]`. It writes `--series`
gauge and counter series at 15 s for `--hours` hours ending now (the insert rate and bytes per
sample), then 5-minute points for the 30 days before that (so the rollup tiers have a month),
rolls everything up (the cost per hour of data) and times 24 h / 7 d / 30 d queries of one
series (the median of 20 runs, so one noisy run on a shared machine does not decide).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# bench/ holds scripts named like our packages (collector.py, alerting.py): put the repository,
# not this folder, first on the path
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

from bench.table import print_figures  # noqa: E402
from collector.storage.sqlite import SqliteStorage  # noqa: E402
from fleetpulse.core.samples import Sample, make_labels  # noqa: E402
from fleetpulse.core.selector import parse_selector  # noqa: E402
from fleetpulse.core.storage import RangeQuery  # noqa: E402
from fleetpulse.core.tiers import DAY_MS, HOUR_MS, RetentionSettings  # noqa: E402
from fleetpulse.core.timeutil import now_ms  # noqa: E402

BATCH = 50_000


def labels(i: int) -> tuple[tuple[str, str], ...]:
    return make_labels({"host": f"game-{i % 50}", "job": "fleetpulse", "container": f"c{i}"})


def points(series: int, start: int, end: int, step: int) -> list[Sample]:
    out = []
    for ts in range(start, end, step):
        for i in range(series):
            out.append(Sample("container_cpu_usage_percent", labels(i), (ts // step + i) % 100, ts))
            out.append(Sample("container_cpu_seconds_total", labels(i), ts / 1000.0 + i, ts))
    return out


async def write_all(store: SqliteStorage, samples: list[Sample]) -> float:
    started = time.perf_counter()
    for offset in range(0, len(samples), BATCH):
        await store.write(samples[offset : offset + BATCH])
    return time.perf_counter() - started


def file_bytes(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def median_query_ms(store: SqliteStorage, query: RangeQuery) -> tuple[float, str, int]:
    times = []
    result = await store.query_range(query)
    for _ in range(20):
        started = time.perf_counter()
        result = await store.query_range(query)
        times.append(time.perf_counter() - started)
    points_count = sum(len(s.points) for s in result.series)
    return statistics.median(times) * 1000, result.tier, points_count


async def run(series: int, hours: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "metrics.db"
        store = await SqliteStorage.open(path, RetentionSettings())
        now = now_ms() // 15_000 * 15_000
        recent = points(series, now - hours * HOUR_MS, now, 15_000)
        seconds = await write_all(store, recent)
        rows.append(("insert rate (samples/s)", f"{len(recent) / seconds:,.0f}"))
        size = file_bytes(path)
        rows.append(("raw samples written", f"{len(recent):,} in {2 * series} series"))
        rows.append(("bytes per stored sample (raw, whole file)", f"{size / len(recent):.1f}"))

        started = time.perf_counter()
        report = await store.maintain(now)  # what the collector asks every minute
        elapsed = time.perf_counter() - started
        hourly = report.periods.get("hourly", 0)
        rows.append(
            (
                "rollup cost per hour of 15 s data",
                f"{elapsed / max(1, hourly) * 1000:.0f} ms for {2 * series} series "
                f"({hourly} h + {report.periods.get('daily', 0)} d in {elapsed:.1f} s)",
            )
        )
        # a month of sparser history before that, so the 7 d and 30 d queries hit full tiers
        first = now - hours * HOUR_MS
        await write_all(store, points(series, first - 32 * DAY_MS, first, 300_000))
        for hour in range(first - 32 * DAY_MS, first, HOUR_MS):
            await store.rollup("hourly", hour)
        for day in range((first - 32 * DAY_MS) // DAY_MS * DAY_MS, first, DAY_MS):
            await store.rollup("daily", day)
        for label, span in (("24h", DAY_MS), ("7d", 7 * DAY_MS), ("30d", 30 * DAY_MS)):
            selector = parse_selector('container_cpu_usage_percent{host="game-7",container="c7"}')
            ms, tier, n = await median_query_ms(store, RangeQuery(selector, now - span, now))
            rows.append((f"query {label} of one series", f"{ms:.2f} ms ({tier}, {n} points)"))
        ms, tier, n = await median_query_ms(
            store,
            RangeQuery(
                parse_selector('container_cpu_seconds_total{container="c7"}'),
                now - DAY_MS,
                now,
                300_000,
                "rate",
            ),
        )
        rows.append(("query 24h rate of one counter, 5m step", f"{ms:.2f} ms ({tier}, {n} points)"))
        await store.close()
        rows.append(("file size at the end", f"{file_bytes(path) / 1e6:.1f} MB"))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--series", type=int, default=200, help="gauge + counter pairs")
    parser.add_argument("--hours", type=int, default=48, help="hours of 15 s raw data")
    args = parser.parse_args(argv)
    print(f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs")
    rows = asyncio.run(run(args.series, args.hours))
    print_figures(rows)


if __name__ == "__main__":
    main()
