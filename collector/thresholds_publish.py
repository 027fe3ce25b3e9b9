"""The effective thresholds as series (`fleetpulse_threshold{host,key,level}` and
`fleetpulse_thresholds_customized{host}`), written once per scrape interval for every known
host: Grafana's threshold lines read them, so an
override set through the API shows there from the next interval on, as it does everywhere.

The same round writes again any override older than `REFRESH_AFTER_MS`, so the store's event
retention never expires one that is still in force.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fleetpulse.core.overrides import REFRESH_AFTER_MS, in_force, override_event, read_overrides
from fleetpulse.core.samples import Sample, label_value, make_labels
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import THRESHOLD_OVERRIDES, StorageBackend, StorageError
from fleetpulse.core.thresholds import CUSTOMIZED_SERIES, THRESHOLD_SERIES, Thresholds
from fleetpulse.core.timeutil import now_ms

log = logging.getLogger(__name__)


async def publish_once(
    storage: StorageBackend, thresholds: Callable[[], Thresholds], now: int
) -> int:
    """One round; returns the samples handed to the store."""
    stored = await read_overrides(storage, now)
    stale = [s for s in stored.values() if s.levels and now - s.ts_ms > REFRESH_AFTER_MS]
    if stale:
        events = [override_event(s.host, s.levels, now) for s in stale]
        await storage.write_events(THRESHOLD_OVERRIDES, events)
    effective = thresholds().with_overrides(in_force(stored))
    hosts = {label_value(v.labels, "host") for v in await storage.query_latest(Selector("up"), 0)}
    samples = []
    for host in sorted(hosts):
        levels, customized = effective.for_host(host)
        samples.append(
            Sample(CUSTOMIZED_SERIES, make_labels({"host": host}), float(customized), now)
        )
        samples += [
            Sample(
                THRESHOLD_SERIES, make_labels({"host": host, "key": key, "level": name}), value, now
            )
            for key, level in levels.items()
            for name, value in level.as_dict().items()
        ]
    await storage.append(samples)
    return len(samples)


async def publish_thresholds(
    storage: StorageBackend, thresholds: Callable[[], Thresholds], every: float
) -> None:
    """`publish_once` every `every` seconds until cancelled; a store failure skips a round."""
    while True:
        try:
            await publish_once(storage, thresholds, now_ms())
        except StorageError as exc:
            log.warning("thresholds not published error=%s", exc)
        await asyncio.sleep(every)
