"""The storage port: what the collector, alert engine, API and CLI may ask of a store.

Adapters (`sqlite`, `influxdb`) implement `Storage`; nothing outside them knows SQL or Flux.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from fleetpulse.core.errors import FleetPulseError
from fleetpulse.core.samples import Labels, Sample, Series
from fleetpulse.core.selector import Selector

AGGREGATES = ("mean", "min", "max", "last", "sum", "count", "rate")
# Aggregates that only make sense on counters (`*_total`): `rate` is the non-negative per-second
# derivative on raw points (a drop is a reset: the new value counts as the increase) and the
# stored `rate_mean` on the rollup tiers.
COUNTER_AGGREGATES = ("rate",)


class StorageError(FleetPulseError):
    """The store could not do what was asked (outage, corrupt file, bad request)."""


class StorageUnavailable(StorageError, ConnectionError):
    """The store is unreachable or overloaded; the write may be retried later."""


@dataclass(frozen=True, slots=True)
class RangeQuery:
    selector: Selector
    start_ms: int
    end_ms: int
    step_ms: int | None = None  # None: the tier's own points
    aggregate: str = "mean"


@dataclass(frozen=True, slots=True)
class RangeResult:
    tier: str
    series: list[Series]


@dataclass(frozen=True, slots=True)
class LatestValue:
    name: str
    labels: Labels
    ts_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class Event:
    """A point in an event measurement (`alert_events`, `agent_logs`).

    `labels` become InfluxDB tags (and must include `host`); `fields` hold the rest. Writing
    the same (measurement, labels, ts) twice keeps one event, so replays do not duplicate.
    """

    ts_ms: int
    labels: Labels
    fields: tuple[tuple[str, str | float], ...]

    def field(self, name: str, default: str | float = "") -> str | float:
        for key, value in self.fields:
            if key == name:
                return value
        return default


@dataclass(frozen=True, slots=True)
class StorageStats:
    """What a store reports about its write path for the collector's own /metrics.

    Optional: an adapter may offer `stats() -> StorageStats` (the collector looks it up with
    getattr, so adapters without it keep working). Counters only ever grow.
    """

    spool_bytes: int = 0  # bytes waiting in the on-disk spool
    spool_batches: int = 0  # batches waiting in the on-disk spool
    dropped_samples: int = 0  # samples given up for good (spool full, refused by the store)


ALERT_EVENTS = "alert_events"
AGENT_LOGS = "agent_logs"
EVENT_MEASUREMENTS = (ALERT_EVENTS, AGENT_LOGS)


class Storage(Protocol):
    async def write(self, samples: Sequence[Sample]) -> None: ...

    async def write_events(self, measurement: str, events: Sequence[Event]) -> None: ...

    async def query_events(
        self,
        measurement: str,
        start_ms: int,
        end_ms: int,
        selector: Selector | None = None,
        limit: int = 10_000,
    ) -> list[Event]:
        """Events in [start, end], oldest first; `selector` matches their labels (its metric
        name is ignored)."""
        ...

    async def query_range(self, query: RangeQuery) -> RangeResult: ...

    async def query_latest(self, selector: Selector, since_ms: int) -> list[LatestValue]: ...

    async def last_seen(self, host: str) -> int | None:
        """The time of the host's latest successful scrape (`up == 1`), in ms."""
        ...

    async def close(self) -> None: ...
