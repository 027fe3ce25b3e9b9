"""The embedded store's rollup schedule: raw → hourly → daily, then expiry, run by the collector.

A period is rolled up once it is complete and `lag` old (late samples get that long to
arrive). Each tier's watermark (the next period to roll up) is kept in the store itself, so
a restart resumes where it stopped and downtime is caught up period by period. Rollups are
keyed by (series, period start), so running one twice writes the same rows.

`run_rollups` asks any store for its upkeep (`maintain`); the SQLite adapter answers with
`catch_up`, InfluxDB with None: its Flux tasks roll it up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from fleetpulse.core.storage import MaintenanceReport, StorageBackend, StorageError
from fleetpulse.core.tiers import ROLLUP_TIERS
from fleetpulse.core.timeutil import now_ms

log = logging.getLogger(__name__)

DEFAULT_LAG_MS = 5 * 60_000
DEFAULT_EVERY_S = 60.0


class RollingStore(Protocol):
    """The steps of a store that rolls itself up, each one transaction."""

    async def rollup_watermark(self, tier: str) -> int | None: ...

    async def earliest(self, tier: str) -> int | None: ...

    async def rollup(self, tier: str, start_ms: int) -> int: ...

    async def expire(self, now_ms: int) -> dict[str, int]: ...


async def catch_up(
    store: RollingStore,
    now: int,
    *,
    lag_ms: int = DEFAULT_LAG_MS,
    max_periods: int | None = None,
) -> MaintenanceReport:
    """Roll up every period that is complete and `lag_ms` old, oldest first, then expire.

    `max_periods` stops early (per tier); the watermark makes the next call continue.
    """
    periods: dict[str, int] = {}
    rows: dict[str, int] = {}
    for tier, period, source in ((t.name, t.resolution_ms, t.source) for t in ROLLUP_TIERS):
        start = await store.rollup_watermark(tier)
        if start is None:
            first = await store.earliest(source)
            if first is None:
                continue
            start = first // period * period
        # the daily tier reads hourly rows: it waits until the hourly watermark passed the day
        ready_until = now - lag_ms
        if source != "raw":
            source_mark = await store.rollup_watermark(source)
            ready_until = min(ready_until, source_mark if source_mark is not None else start)
        done = 0
        while start + period <= ready_until and (max_periods is None or done < max_periods):
            rows[tier] = rows.get(tier, 0) + await store.rollup(tier, start)
            start += period
            done += 1
        periods[tier] = done
    return MaintenanceReport(periods, rows, await store.expire(now))


async def run_rollups(store: StorageBackend, *, every: float = DEFAULT_EVERY_S) -> None:
    """Ask the store for its upkeep now and then every `every` seconds, until it answers that
    it needs none; a store outage is logged and retried on the next round."""
    while True:
        started = time.monotonic()
        try:
            report = await store.maintain(now_ms())
        except StorageError as exc:
            log.warning("rollup failed error=%s; retrying in %gs", exc, every)
        else:
            if report is None:
                return
            if any(report.periods.values()) or any(report.expired.values()):
                log.info(
                    "rollup done hourly=%d daily=%d expired=%s seconds=%.3f",
                    report.periods.get("hourly", 0),
                    report.periods.get("daily", 0),
                    ",".join(f"{k}:{v}" for k, v in report.expired.items() if v) or "none",
                    time.monotonic() - started,
                )
        await asyncio.sleep(every)
