"""The InfluxDB 2.x store: line protocol through the async influxdb-client, Flux to read.

Mapping (the contract for Flux users and dashboards): measurement = metric name, one float
field `value`, tags = the sample's labels (incl. `host`, `job`), millisecond timestamps.
Rollups live in `<bucket>_1h` and `<bucket>_1d`, written by the Flux tasks that
`fleetpulse influx setup` installs. Alert events go to the daily bucket (kept for years, like
alert history should be), exporter logs to the raw one (kept as long as raw samples).

Writes are buffered and batched by `BatchWriter`, which retries and spools (see batch.py): it
is the one queue between the scrape loops and InfluxDB. Reads are one Flux query each, built
in `collector/storage/influx/flux.py`. Rollups and expiry are InfluxDB's own (Flux tasks,
bucket retention).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiohttp
from influxdb_client.client.flux_table import TableList
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from collector.storage.batch import (
    BatchSettings,
    BatchWriter,
    WriteRejected,
    WriteRetryable,
    WriteStats,
    WriteTooLarge,
)
from collector.storage.influx import flux
from collector.storage.influx.tasks import bucket_of
from collector.storage.settings import InfluxSettings
from collector.storage.spool import Spool
from fleetpulse.core.samples import Labels, Sample, Series, is_counter
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import (
    AGENT_LOGS,
    AGGREGATES,
    ALERT_EVENTS,
    COUNTER_AGGREGATES,
    THRESHOLD_OVERRIDES,
    Event,
    LatestValue,
    MaintenanceReport,
    RangeQuery,
    RangeResult,
    StorageError,
    StorageStats,
    StorageUnavailable,
    WriteObserver,
)
from fleetpulse.core.storehealth import Cause, StoreHealth
from fleetpulse.core.tiers import RetentionSettings, choose_tier, retention_ms
from fleetpulse.core.timeutil import now_ms

log = logging.getLogger(__name__)

EVENT_TIER = {ALERT_EVENTS: "daily", AGENT_LOGS: "raw", THRESHOLD_OVERRIDES: "daily"}
EMPTY_EVENT_FIELD = "_event"  # InfluxDB needs one field; an event without fields gets this
# Columns of a Flux result that are not labels.
RESERVED_COLUMNS = frozenset(
    {"result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"}
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CACHED_SERIES = 1_000_000
MS_PRECISION = cast(WritePrecision, WritePrecision.MS)  # the client types it as a plain str

_MEASUREMENT_ESCAPE = str.maketrans({",": "\\,", " ": "\\ ", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_TAG_ESCAPE = str.maketrans(
    {",": "\\,", "=": "\\=", " ": "\\ ", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
)
# Line protocol cannot carry a newline anywhere, so a multi-line message keeps its line breaks
# as the two characters \n (\r likewise), as tags do.
_BACKSLASH_BEFORE_SPECIAL = re.compile(r"\\(?=[, =]|$)")
_STRING_FIELD_ESCAPE = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r"})

# What a status means and what the operator should do about it.
STATUS_HINTS = {
    400: "the store refused the data",
    401: "the token was refused; check storage.influxdb.token",
    403: "the token may not write here; give it write access to the buckets",
    404: "bucket or org not found; run `fleetpulse influx setup` or check storage.influxdb",
    413: "the batch is too large; lower storage.influxdb.batch_size",
    429: "InfluxDB asks us to slow down (a rate or quota limit); requests wait as long as its "
    "Retry-After says; raise that limit, or write less often (scrape.interval) or in larger "
    "batches (storage.influxdb.batch_size)",
}
# No answer at all: what /healthz and the log say to check, since no status names a cause.
UNREACHABLE_HINT = "check that InfluxDB runs and storage.influxdb.url points at it"
STATUS_CAUSES = {
    401: Cause.UNAUTHORIZED,
    403: Cause.FORBIDDEN,
    404: Cause.BUCKET_NOT_FOUND,
    413: Cause.TOO_LARGE,
    429: Cause.RATE_LIMITED,
}
# Refusals an operator fixes (token, permissions, bucket): writes wait in the spool meanwhile.
HELD_STATUSES = (401, 403, 404)


def escape_tag(text: str) -> str:
    # A backslash before a comma, space, equals sign or the end (a Windows mountpoint `C:\`)
    # would escape the separator after it and corrupt the whole batch. Doubled, InfluxDB reads
    # it as data: the tag then holds `C:\\`, which is wrong by one character but not fatal.
    if "\\" in text:
        text = _BACKSLASH_BEFORE_SPECIAL.sub(r"\\\\", text)
    return text.translate(_TAG_ESCAPE)


def series_key(name: str, labels: Labels) -> str:
    """`measurement,tag=value,...`: the line protocol series key (labels are sorted)."""
    parts = [name.translate(_MEASUREMENT_ESCAPE)]
    for key, value in labels:
        if value:  # InfluxDB has no empty tags; Prometheus treats "" as absent, too
            parts.append(f"{escape_tag(key)}={escape_tag(value)}")
    return ",".join(parts)


def format_field(value: str | float) -> str:
    if isinstance(value, str):
        return '"' + value.translate(_STRING_FIELD_ESCAPE) + '"'
    return repr(float(value))


def event_line(measurement: str, event: Event) -> str:
    fields = [
        (k, v) for k, v in sorted(event.fields) if isinstance(v, str) or math.isfinite(v)
    ] or [(EMPTY_EVENT_FIELD, 1.0)]
    body = ",".join(f"{escape_tag(k)}={format_field(v)}" for k, v in fields)
    return f"{series_key(measurement, event.labels)} {body} {event.ts_ms}"


def to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def record_labels(values: dict[str, Any], group: set[str] | None = None) -> Labels:
    """Labels of one result row: string columns that are tags (the group key, when known)."""
    return tuple(
        sorted(
            (key, value)
            for key, value in values.items()
            if key not in RESERVED_COLUMNS
            and isinstance(value, str)
            and value
            and (group is None or key in group)
        )
    )


def retry_after_seconds(exc: ApiException) -> float | None:
    header = getattr(exc, "retry_after", None)
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None  # an HTTP date; our own backoff will do


def describe_api_error(exc: ApiException) -> str:
    message = getattr(exc, "message", None) or exc.reason or "no message"
    if isinstance(message, bytes):
        message = message.decode(errors="replace")
    return f"HTTP {exc.status}: {str(message).strip()[:300]}"


class InfluxStorage:
    """Storage on InfluxDB 2.x; writes are batched, retried and spooled on disk."""

    def __init__(
        self,
        settings: InfluxSettings,
        retention: RetentionSettings,
        spool: Spool,
    ) -> None:
        self.settings = settings
        self.retention = retention
        self.client = InfluxDBClientAsync(
            url=settings.url,
            token=settings.token,
            org=settings.org,
            timeout=int(settings.timeout * 1000),
            enable_gzip=True,
        )
        self._write_api = self.client.write_api()
        self._query_api = self.client.query_api()
        self._series_keys: dict[tuple[str, Labels], str] = {}
        self.skipped_non_finite = 0
        self._observer: WriteObserver | None = None
        self.writer = BatchWriter(
            self._send,
            spool,
            BatchSettings(
                batch_size=settings.batch_size,
                flush_interval=settings.flush_interval,
                max_retries=settings.max_retries,
                retry_interval=settings.retry_interval,
                max_retry_delay=settings.max_retry_delay,
                close_timeout=settings.timeout,
            ),
        )

    @classmethod
    async def open(
        cls, settings: InfluxSettings, retention: RetentionSettings, spool_dir: Path
    ) -> InfluxStorage:
        spool = await asyncio.to_thread(Spool.open, spool_dir, settings.spool_max_bytes)
        store = cls(settings, retention, spool)
        store.writer.start()
        log.info(
            "influxdb store open url=%s org=%s bucket=%s spool=%s spooled_batches=%d",
            settings.url,
            settings.org,
            settings.bucket,
            spool_dir,
            len(spool),
        )
        return store

    # -- writes -------------------------------------------------------------------------

    def _line(self, sample: Sample) -> str | None:
        if not math.isfinite(sample.value):  # line protocol has no NaN or Inf
            self.skipped_non_finite += 1
            return None
        key = (sample.name, sample.labels)
        prefix = self._series_keys.get(key)
        if prefix is None:
            if len(self._series_keys) >= MAX_CACHED_SERIES:
                self._series_keys.clear()  # churned series: start over rather than grow
            prefix = self._series_keys[key] = series_key(sample.name, sample.labels) + " value="
        return f"{prefix}{float(sample.value)!r} {sample.ts_ms}"

    async def write(self, samples: Sequence[Sample]) -> None:
        lines = [line for line in map(self._line, samples) if line is not None]
        self.writer.add("raw", lines)

    async def append(self, samples: Sequence[Sample]) -> None:
        """Scraped samples go straight to the batch writer (it never waits)."""
        started = time.monotonic()
        await self.write(samples)
        if self._observer is not None:
            self._observer.wrote(len(samples), time.monotonic() - started)

    def pace(self, fastest_interval: float) -> None:
        """Nothing to tune: batches leave every storage.influxdb.flush_interval."""

    async def drain(self) -> None:
        """Nothing waits in front of the batch writer; close() sends what it holds."""

    def observe_writes(self, observer: WriteObserver) -> None:
        self._observer = observer

    async def maintain(self, now_ms: int) -> MaintenanceReport | None:
        """None: Flux tasks roll InfluxDB up and bucket retention expires it."""
        return None

    async def write_events(self, measurement: str, events: Sequence[Event]) -> None:
        tier = EVENT_TIER.get(measurement)
        if tier is None:
            raise StorageError(f"unknown event measurement {measurement!r}")
        self.writer.add(tier, [event_line(measurement, e) for e in events])

    async def flush(self) -> None:
        """Send what is buffered now (the writer also does so every flush_interval)."""
        await self.writer.flush()

    def write_stats(self) -> WriteStats:
        return self.writer.stats()

    def stats(self) -> StorageStats:
        stats = self.writer.stats()
        return StorageStats(
            pending_samples=stats.pending_samples,
            spool_bytes=stats.spool_bytes,
            spool_batches=stats.spool_batches,
            spool_limit_bytes=self.writer.spool.max_bytes,
            dropped_samples=stats.dropped_samples + stats.rejected_samples,
        )

    async def _send(self, tier: str, lines: list[str]) -> None:
        bucket = bucket_of(self.settings.bucket, tier)
        try:
            await self._write_api.write(
                bucket=bucket,
                org=self.settings.org,
                record="\n".join(lines),
                write_precision=MS_PRECISION,
            )
        except ApiException as exc:
            detail = f"influxdb write to bucket {bucket} failed: {describe_api_error(exc)}"
            status = exc.status or 0
            hint = STATUS_HINTS.get(
                status,
                "InfluxDB failed it (a server error); check its log"
                if status >= 500
                else "the store refused the request",
            )
            cause = STATUS_CAUSES.get(status, Cause.UNREACHABLE if status >= 500 else Cause.OTHER)
            if status in HELD_STATUSES:
                raise WriteRetryable(
                    f"{detail}; {hint}; writes wait in the spool until it answers", cause=cause
                ) from None
            if status == 429 or status >= 500:
                raise WriteRetryable(f"{detail}; {hint}", retry_after_seconds(exc), cause) from None
            if status == 413:
                raise WriteTooLarge(f"{detail}; {hint}") from None
            raise WriteRejected(f"{detail}; {hint}", cause) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            problem, cause = self._no_answer(exc)
            raise WriteRetryable(
                f"{problem}; writes wait in the spool until it answers", cause=cause
            ) from None

    def _no_answer(self, exc: BaseException) -> tuple[str, Cause]:
        """What to say of a request that got no answer: a timeout (InfluxDB overloaded or
        stalled) is not a refused connection (InfluxDB down or the URL wrong)."""
        url = self.settings.url
        if isinstance(exc, TimeoutError):
            return (
                f"influxdb at {url} did not answer within {self.settings.timeout:g}s; it may "
                "be overloaded or stalled: check its load and disk, or raise "
                "storage.influxdb.timeout",
                Cause.TIMEOUT,
            )
        reason = str(exc) or type(exc).__name__
        return f"influxdb at {url} unreachable: {reason}; {UNREACHABLE_HINT}", Cause.UNREACHABLE

    # -- reads --------------------------------------------------------------------------

    async def _query(self, text: str) -> TableList:
        try:
            tables: TableList = await self._query_api.query(text, org=self.settings.org)
        except ApiException as exc:
            detail = f"influxdb query failed: {describe_api_error(exc)}"
            status = exc.status or 0
            if status == 400:  # our query, not the store's health
                raise StorageError(detail) from None
            cause = STATUS_CAUSES.get(status, Cause.UNREACHABLE if status >= 500 else Cause.OTHER)
            hint = STATUS_HINTS.get(status)
            message = f"{detail}; {hint}" if hint else detail
            # a token, a permission or a bucket is the operator's to fix, as an overloaded
            # or stopped InfluxDB passes by itself: the store is unavailable (a 503), not
            # broken
            error: StorageError = (
                StorageUnavailable(message, cause)
                if status in HELD_STATUSES or status == 429 or status >= 500
                else StorageError(message, cause)
            )
            self._read_failed(error)
            raise error from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = StorageUnavailable(*self._no_answer(exc))
            self._read_failed(error)
            raise error from None
        if self.writer.health.read_ok() is not None:
            log.warning("influxdb reads recovered url=%s", self.settings.url)
        return tables

    def _read_failed(self, error: StorageError) -> None:
        if self.writer.health.read_failed(error.cause, str(error), now_ms()):
            log.error("influxdb reads failing cause=%s error=%s", error.cause, error)

    def health(self) -> StoreHealth:
        return self.writer.health.health()

    def _bucket(self, tier: str) -> str:
        return bucket_of(self.settings.bucket, tier)

    async def query_range(self, query: RangeQuery) -> RangeResult:
        if query.aggregate not in AGGREGATES:
            raise StorageError(f"unknown aggregate {query.aggregate!r}")
        if query.aggregate in COUNTER_AGGREGATES and not is_counter(query.selector.metric):
            raise StorageError(
                f"aggregate {query.aggregate} needs a counter (a name ending in _total), "
                f"got {query.selector.metric!r}"
            )
        tier = choose_tier(query.start_ms, now_ms(), self.retention).name
        tables = await self._query(flux.range_query(self._bucket(tier), tier, query))
        return RangeResult(tier, series_from_tables(tables, query.selector.metric))

    async def query_latest(self, selector: Selector, since_ms: int) -> list[LatestValue]:
        tables = await self._query(flux.latest_query(self._bucket("raw"), selector, since_ms))
        out = []
        for series in series_from_tables(tables, selector.metric):
            ts, value = series.points[-1]
            out.append(LatestValue(selector.metric, series.labels, ts, value))
        return out

    async def last_seen(self, host: str) -> int | None:
        now = now_ms()
        tables = await self._query(
            flux.last_seen_query(
                self._bucket("raw"), host, now - retention_ms(self.retention, "raw")
            )
        )
        times = [to_ms(r.values["_time"]) for t in tables for r in t.records]
        if not times:  # not in raw for a while: the hourly `max` says which hour it was up
            tables = await self._query(
                flux.last_seen_query(
                    self._bucket("hourly"),
                    host,
                    now - retention_ms(self.retention, "hourly"),
                    field="max",
                )
            )
            times = [to_ms(r.values["_time"]) for t in tables for r in t.records]
        return max(times) if times else None

    async def query_events(
        self,
        measurement: str,
        start_ms: int,
        end_ms: int,
        selector: Selector | None = None,
        limit: int = 10_000,
    ) -> list[Event]:
        tier = EVENT_TIER.get(measurement)
        if tier is None:
            raise StorageError(f"unknown event measurement {measurement!r}")
        tables = await self._query(
            flux.events_query(self._bucket(tier), measurement, start_ms, end_ms, selector, limit)
        )
        events = []
        for table in tables:
            group = {c.label for c in table.columns if c.group}
            for record in table.records:
                values = record.values
                fields = tuple(
                    sorted(
                        (key, value if isinstance(value, str) else float(value))
                        for key, value in values.items()
                        if key not in RESERVED_COLUMNS
                        and key not in group
                        and key != EMPTY_EVENT_FIELD
                        and isinstance(value, str | int | float)
                        and not isinstance(value, bool)
                    )
                )
                labels = record_labels(values, group)
                events.append(Event(to_ms(record.values["_time"]), labels, fields))
        events.sort(key=lambda e: e.ts_ms)
        return events[:limit]

    async def close(self) -> None:
        try:
            await self.writer.close()
        finally:
            await self.client.close()  # type: ignore[no-untyped-call]
        stats = self.writer.stats()
        log.info(
            "influxdb store closed sent_samples=%d spooled_samples=%d dropped_samples=%d "
            "rejected_samples=%d",
            stats.sent_samples,
            stats.spooled_samples,
            stats.dropped_samples,
            stats.rejected_samples,
        )


def series_from_tables(tables: TableList, name: str) -> list[Series]:
    """One Series per label set, points oldest first; null values are skipped."""
    by_labels: dict[Labels, list[tuple[int, float]]] = {}
    for table in tables:
        for record in table.records:
            value = record.values.get("_value")
            if value is None or isinstance(value, bool | str):
                continue
            labels = record_labels(record.values)
            by_labels.setdefault(labels, []).append((to_ms(record.values["_time"]), float(value)))
    return [Series(name, labels, sorted(points)) for labels, points in sorted(by_labels.items())]
