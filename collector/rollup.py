"""The embedded store's rollup schedule: raw → hourly → daily, then expiry, run by the collector.

A period is rolled up once it is complete and `lag` old (late samples get that long to
arrive). Each tier's watermark (the next period to roll up) is kept in the store itself, so
a restart resumes where it stopped and downtime is caught up period by period. Rollups are
keyed by (series, period start), so running one twice writes the same rows.

InfluxDB rolls itself up with Flux tasks; this only runs for stores that offer the
`RollingStore` methods (the SQLite adapter).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from fleetpulse.core.storage import Storage, StorageError
from fleetpulse.core.tiers import ROLLUP_TIERS
from fleetpulse.core.timeutil import now_ms

log = logging.getLogger(__name__)

DEFAULT_LAG_MS = 5 * 60_000
DEFAULT_EVERY_S = 60.0


@runtime_checkable
class RollingStore(Protocol):
    async def rollup_watermark(self, tier: str) -> int | None: ...

    async def earliest(self, tier: str) -> int | None: ...

    async def rollup(self, tier: str, start_ms: int) -> int: ...

    async def expire(self, now_ms: int) -> dict[str, int]: ...


@dataclass(slots=True)
class RollupReport:
    periods: dict[str, int] = field(default_factory=dict)  # tier -> periods rolled up
    rows: dict[str, int] = field(default_factory=dict)  # tier -> rows written
    expired: dict[str, int] = field(default_factory=dict)  # table -> rows deleted


async def catch_up(
    store: RollingStore,
    now: int,
    *,
    lag_ms: int = DEFAULT_LAG_MS,
    max_periods: int | None = None,
) -> RollupReport:
    """Roll up every period that is complete and `lag_ms` old, oldest first, then expire.

    `max_periods` stops early (per tier); the watermark makes the next call continue.
    """
    report = RollupReport()
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
            report.rows[tier] = report.rows.get(tier, 0) + await store.rollup(tier, start)
            start += period
            done += 1
        report.periods[tier] = done
    report.expired = await store.expire(now)
    return report


async def run_rollups(
    store: Storage,
    *,
    every: float = DEFAULT_EVERY_S,
    lag_ms: int = DEFAULT_LAG_MS,
) -> None:
    """Catch up now and then every `every` seconds, forever; a store outage is logged and
    retried on the next round."""
    if not isinstance(store, RollingStore):
        return
    while True:
        started = time.monotonic()
        try:
            report = await catch_up(store, now_ms(), lag_ms=lag_ms)
        except StorageError as exc:
            log.warning("rollup failed error=%s; retrying in %gs", exc, every)
        else:
            if any(report.periods.values()) or any(report.expired.values()):
                log.info(
                    "rollup done hourly=%d daily=%d expired=%s seconds=%.3f",
                    report.periods.get("hourly", 0),
                    report.periods.get("daily", 0),
                    ",".join(f"{k}:{v}" for k, v in report.expired.items() if v) or "none",
                    time.monotonic() - started,
                )
        await asyncio.sleep(every)
