"""The collector's rollup schedule: every minute, it asks the store for its upkeep.

The SQLite adapter rolls up and expires what is due (`collector/storage/sqlite/catchup.py`);
InfluxDB answers None, as its Flux tasks roll it up, and is not asked again.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fleetpulse.core.storage import StorageBackend, StorageError
from fleetpulse.core.timeutil import now_ms

log = logging.getLogger(__name__)

DEFAULT_EVERY_S = 60.0


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
