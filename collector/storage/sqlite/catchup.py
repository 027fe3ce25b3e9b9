"""Which periods are due: the SQLite store's upkeep, raw -> hourly -> daily, then expiry.

A period is rolled up once it is complete and `lag` old (late samples get that long to
arrive). Each tier's watermark (the next period to roll up) is kept in the store itself, so
a restart resumes where it stopped and downtime is caught up period by period. Rollups are
keyed by (series, period start), so running one twice writes the same rows. Each step is a
transaction of its own, so writes go on between them.
"""

from __future__ import annotations

from typing import Protocol

from fleetpulse.core.storage import MaintenanceReport
from fleetpulse.core.tiers import ROLLUP_TIERS

DEFAULT_LAG_MS = 5 * 60_000


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
