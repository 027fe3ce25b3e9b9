"""The storage port: what the collector, alert engine, API and CLI may ask of a store.

`Storage` is what every service reads and writes through. `StorageBackend` adds what the
process that opened a store drives: the write path the collector feeds (the adapter batches,
lingers and counts drops itself), its figures for /metrics and its upkeep (rollups, expiry).
Adapters (`sqlite`, `influxdb`) implement `StorageBackend`; nothing outside them knows SQL or
Flux, and the collector never names one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fleetpulse.core.errors import FleetPulseError
from fleetpulse.core.samples import Labels, Sample, Series
from fleetpulse.core.selector import Selector
from fleetpulse.core.storehealth import Cause, StoreHealth

AGGREGATES = ("mean", "min", "max", "last", "sum", "count", "rate")
# Aggregates that only make sense on counters (`*_total`): `rate` is the non-negative per-second
# derivative on raw points (a drop is a reset: the new value counts as the increase) and the
# stored `rate_mean` on the rollup tiers.
COUNTER_AGGREGATES = ("rate",)


class StorageError(FleetPulseError):
    """The store could not do what was asked (outage, corrupt file, bad request); `cause`
    says why in words an operator can act on."""

    default_cause = Cause.OTHER

    def __init__(self, message: str, cause: Cause | None = None) -> None:
        super().__init__(message)
        self.cause = self.default_cause if cause is None else cause


class StorageUnavailable(StorageError, ConnectionError):
    """The store is unreachable or overloaded; the write may be retried later."""

    default_cause = Cause.UNREACHABLE


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
    """What a store reports about its write path for the collector's own /metrics; the
    counters only ever grow."""

    pending_samples: int = 0  # handed to append() and not written yet
    spool_bytes: int = 0  # bytes waiting in the on-disk spool
    spool_batches: int = 0  # batches waiting in the on-disk spool
    spool_limit_bytes: int = 0  # the spool's bound; 0: no spool
    queue_full_samples: int = 0  # dropped: the write queue stayed full
    write_failed_samples: int = 0  # dropped: their write failed
    dropped_samples: int = 0  # given up by the store (spool full, refused by the store)


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """What one round of a store's upkeep did."""

    periods: Mapping[str, int] = field(default_factory=dict)  # tier -> periods rolled up
    rows: Mapping[str, int] = field(default_factory=dict)  # tier -> rows written
    expired: Mapping[str, int] = field(default_factory=dict)  # table -> rows deleted


class WriteObserver(Protocol):
    """Told of every write a store makes for `append` (the collector's own /metrics)."""

    def wrote(self, samples: int, seconds: float) -> None: ...

    def failed(self, samples: int, seconds: float) -> None: ...


ALERT_EVENTS = "alert_events"
AGENT_LOGS = "agent_logs"
# per-host threshold levels set through the API; the latest event of a host wins (see
# `fleetpulse.core.overrides`)
THRESHOLD_OVERRIDES = "threshold_overrides"
EVENT_MEASUREMENTS = (ALERT_EVENTS, AGENT_LOGS, THRESHOLD_OVERRIDES)


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

    def health(self) -> StoreHealth:
        """Whether this handle's writes and reads fail now, why and since when, and its
        latest write outage (so a reader can tell missing data from a failed store)."""
        ...

    async def close(self) -> None: ...


class StorageBackend(Storage, Protocol):
    """A store as the process that opened it drives it: what the collector feeds and the
    upkeep it schedules, on top of the `Storage` port."""

    async def append(self, samples: Sequence[Sample]) -> None:
        """Hand scraped samples over to be written in the store's own time, batched (and
        lingered, where that pays); waits only while the store's queue is full. A write that
        then fails is counted in `stats()`, not raised."""
        ...

    def pace(self, fastest_interval: float) -> None:
        """The shortest interval (seconds) at which the same series arrive again, 0 for none:
        a store may hold writes back to carry several rounds of a series at once."""
        ...

    async def drain(self) -> None:
        """Wait, without lingering, until what `append` took so far is written or given up
        (a store that sends it in `close` returns at once)."""
        ...

    def observe_writes(self, observer: WriteObserver) -> None:
        """Report each write made for `append` to `observer` from now on."""
        ...

    def stats(self) -> StorageStats: ...

    async def maintain(self, now_ms: int) -> MaintenanceReport | None:
        """Roll up and expire what is due now. None: the store does that by itself (InfluxDB's
        Flux tasks), so it need not be asked again."""
        ...
