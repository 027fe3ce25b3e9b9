"""The storage port: what the collector, alert engine, API and CLI may ask of a store.

Adapters (`sqlite`, `influxdb`) implement `Storage`; nothing outside them knows SQL or Flux.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from collector.errors import CollectorError
from fleetpulse.samples import Labels, Sample, Series
from fleetpulse.selector import Selector

AGGREGATES = ("mean", "min", "max", "last", "sum", "count")


class StorageError(CollectorError):
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


class Storage(Protocol):
    async def write(self, samples: Sequence[Sample]) -> None: ...

    async def query_range(self, query: RangeQuery) -> RangeResult: ...

    async def query_latest(self, selector: Selector, since_ms: int) -> list[LatestValue]: ...

    async def last_seen(self, host: str) -> int | None:
        """The time of the host's latest successful scrape (`up == 1`), in ms."""
        ...

    async def close(self) -> None: ...
