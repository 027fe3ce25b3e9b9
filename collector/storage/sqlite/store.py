"""The embedded store's facade: the storage port over one SQLite file in WAL mode.

One writer thread writes (samples, events, rollups, expiry) and one reader thread reads, each
with its own connection, so the event loop never blocks and other processes (the CLI, a
second API, `sqlite3`) can read while the collector writes. Scraped samples reach the writer
through the store's own write queue, which lingers while that pays.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import TypeVar

from collector.storage.sqlite import queries
from collector.storage.sqlite import rollup as rollups
from collector.storage.sqlite.catchup import catch_up
from collector.storage.sqlite.failures import storage_error
from collector.storage.sqlite.queries import SelectorQueries
from collector.storage.sqlite.reads import ReadBatcher
from collector.storage.sqlite.schema import SCHEMA, connect
from collector.storage.sqlite.series import SeriesIds
from collector.storage.sqlite.writes import write_events, write_samples
from collector.storage.writequeue import WriteQueue
from fleetpulse.core.samples import Sample
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import (
    EVENT_MEASUREMENTS,
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
from fleetpulse.core.storehealth import Cause, HealthTracker, StoreHealth
from fleetpulse.core.tiers import RetentionSettings, choose_tier
from fleetpulse.core.timeutil import now_ms

log = logging.getLogger(__name__)
T = TypeVar("T")

READERS = 1
# seconds of writes without a failure before a write outage counts as over (HealthTracker)
HEALTH_SETTLE = 5.0


class _Failed(Exception):
    """A call on a store thread failed; `error` says why (raised to `_run`, never further)."""

    def __init__(self, error: StorageError) -> None:
        super().__init__(str(error))
        self.error = error


class SqliteStorage:
    """Storage on one SQLite file; safe to read from other processes while it writes."""

    def __init__(
        self,
        path: Path,
        retention: RetentionSettings,
        *,
        timeout: float = 30.0,
        flush_interval: float = 0.0,
        health_settle: float = HEALTH_SETTLE,
    ) -> None:
        self.path = path
        self.retention = retention
        self.timeout = timeout
        self.flush_interval = flush_interval  # storage.sqlite.flush_interval: the most to linger
        self.queue = WriteQueue(self.write)  # what append() hands over
        self._queue_task: asyncio.Task[None] | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-write")
        # One reader thread: queries are mostly Python work on their rows, and a second thread
        # only fought the event loop for the GIL (a 1,000-rule cycle took ~1.5x as long)
        self._readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="sqlite-read")
        self._read_batches = ReadBatcher(self._readers)
        self._local = threading.local()
        # bumped when the file at `path` turns out to be another one than the store holds (the
        # disk was remounted or restored under it): each thread's connection then reopens
        self._generation = 0
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file opened
        self._series = SeriesIds()  # the writer thread's
        self._selected = SelectorQueries()  # the reader thread's
        self._health = HealthTracker(settle_ms=int(health_settle * 1000))

    @classmethod
    async def open(
        cls, path: Path, retention: RetentionSettings, *, flush_interval: float = 0.0
    ) -> SqliteStorage:
        store = cls(path, retention, flush_interval=flush_interval)
        try:
            await store._run(store._writer, store._create_schema, writes=True)
        except BaseException:
            await store.close()
            raise
        log.info("sqlite store open path=%s", path)
        return store

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.generation != self._generation:
            with suppress(sqlite3.Error):
                conn.close()
            conn = None
        if conn is None:
            generation = self._generation
            conn = connect(self.path)
            if generation:
                conn.executescript(SCHEMA)  # the file now there may be a fresh one
            conn.create_function("keeps", 2, self._selected.keep)
            self._local.conn, self._local.generation = conn, generation
        return conn

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        return found.st_dev, found.st_ino

    def _classified(self, fn: Callable[[], T]) -> Callable[[], T]:
        """`fn`, whose SQLite or OS error becomes the StorageError naming its cause, on the
        pool's thread: finding the cause may ask the disk, which must not stall the loop."""

        def call() -> T:
            try:
                return fn()
            except (sqlite3.Error, OSError) as exc:
                raise _Failed(storage_error(exc, self.path)) from exc

        return call

    def _writing(self, fn: Callable[[], T]) -> Callable[[], T]:
        """`fn` for the writer thread; when it fails because the store holds a file that is
        no longer the one at `path`, it runs again on the file now there (the failed
        transaction was rolled back, so nothing is written twice)."""

        def write() -> T:
            try:
                return fn()
            except (sqlite3.Error, OSError):
                if not self._reopen_if_replaced():
                    raise
            return fn()

        return write

    def _reopen_if_replaced(self) -> bool:
        """On the writer thread, after a failure: a read-only or failed disk that the operator
        remounted (or restored) leaves this process holding the old file, which fails forever;
        the file at `path` is then another one, and the store reopens it. A missing file is
        no reason: while the disk is unmounted its mount point is an empty folder."""
        found = self._file_identity()
        if found is None or found == self._identity:
            return False
        log.warning(
            "sqlite store file at %s is a new one (remounted or restored): reopening", self.path
        )
        self._identity = found
        self._generation += 1
        self._series.forget()  # ids of the old file
        return True

    async def _run(
        self, pool: ThreadPoolExecutor, fn: Callable[[], T], *, writes: bool = False
    ) -> T:
        """`fn` on the writer's or the reader's thread; with `writes`, its outcome is the
        write health (`health()`), else the read health (the writer's own reads, such as
        watermarks, say nothing about whether writes work, and are not tracked)."""
        loop = asyncio.get_running_loop()
        tracked = writes or pool is self._readers
        call = self._classified(self._writing(fn) if writes else fn)
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the thread finishes, and a stopping service would then run on
            async with asyncio.timeout(self.timeout):
                if pool is self._readers:
                    result = await self._read_batches.submit(loop, call)
                else:
                    result = await loop.run_in_executor(pool, call)
        except TimeoutError:
            error: StorageError = StorageUnavailable(
                f"sqlite store {self.path} did not answer within {self.timeout:g}s: another "
                "process may hold a lock on it, or its disk has stalled",
                Cause.TIMEOUT,
            )
        except _Failed as failed:
            if tracked:
                self._failed(failed.error, writes)
            raise failed.error from failed.__cause__
        else:
            if tracked:
                self._succeeded(writes)
            return result
        if tracked:
            self._failed(error, writes)
        raise error

    def _failed(self, error: StorageError, writes: bool) -> None:
        record = self._health.write_failed if writes else self._health.read_failed
        if record(error.cause, str(error), now_ms()):
            # once per outage (and when its cause changes), not once per batch
            log.error(
                "sqlite store %s failing cause=%s error=%s",
                "writes" if writes else "reads",
                error.cause,
                error,
            )

    def _succeeded(self, writes: bool) -> None:
        ended = self._health.write_ok(now_ms()) if writes else self._health.read_ok()
        if ended is not None:
            log.warning(
                "sqlite store %s recovered cause=%s failing_for=%.0fs",
                "writes" if writes else "reads",
                ended.cause,
                (now_ms() - ended.since_ms) / 1000,
            )

    def health(self) -> StoreHealth:
        return self._health.health()

    def _create_schema(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn().executescript(SCHEMA)
        self._identity = self._file_identity()

    # -- writes -------------------------------------------------------------------------

    async def write(self, samples: Sequence[Sample]) -> None:
        if samples:
            await self._run(
                self._writer,
                lambda: write_samples(self._conn(), self._series, samples),
                writes=True,
            )

    async def append(self, samples: Sequence[Sample]) -> None:
        if self._queue_task is None:
            # started by the first append, in the loop that feeds it; close() stops it
            self._queue_task = asyncio.create_task(self.queue.run(), name="storage-writer")
        await self.queue.put(samples)

    def pace(self, fastest_interval: float) -> None:
        # Lingering pays only when a write can then carry two scrapes of a series; otherwise
        # it would hold samples in memory (and from queries) for nothing.
        interval = self.flush_interval
        linger = interval if 0 < 2 * fastest_interval <= interval else 0.0
        if linger != self.queue.linger:
            log.info("storage writes linger=%gs fastest_interval=%gs", linger, fastest_interval)
            self.queue.set_linger(linger)

    async def drain(self) -> None:
        await self.queue.drained()

    def observe_writes(self, observer: WriteObserver) -> None:
        self.queue.observer = observer

    def stats(self) -> StorageStats:
        return StorageStats(
            pending_samples=self.queue.pending_samples,
            queue_full_samples=self.queue.dropped["queue_full"],
            write_failed_samples=self.queue.dropped["write_failed"],
        )

    async def write_events(self, measurement: str, events: Sequence[Event]) -> None:
        if measurement not in EVENT_MEASUREMENTS:
            raise StorageError(f"unknown event measurement {measurement!r}")
        if events:
            await self._run(
                self._writer, lambda: write_events(self._conn(), measurement, events), writes=True
            )

    # -- reads --------------------------------------------------------------------------

    async def query_events(
        self,
        measurement: str,
        start_ms: int,
        end_ms: int,
        selector: Selector | None = None,
        limit: int = 10_000,
    ) -> list[Event]:
        return await self._run(
            self._readers,
            lambda: queries.events(self._conn(), measurement, start_ms, end_ms, selector, limit),
        )

    async def query_range(self, query: RangeQuery) -> RangeResult:
        queries.check(query)
        tier = choose_tier(query.start_ms, now_ms(), self.retention)
        series = await self._run(
            self._readers, lambda: self._selected.range(self._conn(), query, tier.name)
        )
        return RangeResult(tier.name, series)

    async def query_latest(self, selector: Selector, since_ms: int) -> list[LatestValue]:
        return await self._run(
            self._readers, lambda: self._selected.latest(self._conn(), selector, since_ms)
        )

    async def last_seen(self, host: str) -> int | None:
        return await self._run(self._readers, lambda: queries.last_seen(self._conn(), host))

    # -- rollups and expiry ----------------------------------------------------------------

    async def maintain(self, now_ms: int) -> MaintenanceReport:
        return await catch_up(self, now_ms)

    async def rollup_watermark(self, tier: str) -> int | None:
        """Where the next `tier` rollup starts (ms), or None before the first one."""
        return await self._run(self._writer, lambda: rollups.watermark(self._conn(), tier))

    async def earliest(self, tier: str) -> int | None:
        """The oldest timestamp (ms) stored in a tier, or None when it is empty."""
        return await self._run(self._writer, lambda: rollups.earliest(self._conn(), tier))

    async def rollup(self, tier: str, start_ms: int) -> int:
        """Roll the period starting at `start_ms` up into `tier` and move the tier's watermark
        past it, in one transaction. Idempotent: rows are keyed by (series, period start)."""
        return await self._run(
            self._writer, lambda: rollups.roll_up(self._conn(), tier, start_ms), writes=True
        )

    async def expire(self, now_ms: int) -> dict[str, int]:
        """Delete what is past each tier's retention (never source rows a rollup has not read
        yet), then series left with no data; returns the rows deleted per table."""

        def expire_sync() -> dict[str, int]:
            deleted, gone = rollups.expire(self._conn(), self.retention, now_ms)
            self._series.forget_ids(gone)  # their ids may be reused
            return deleted

        return await self._run(self._writer, expire_sync, writes=True)

    async def close(self) -> None:
        if self._queue_task is not None:  # what drain() did not write by now is given up
            self._queue_task.cancel()
            await asyncio.gather(self._queue_task, return_exceptions=True)
            self._queue_task = None

        def close_conn() -> None:
            conn = getattr(self._local, "conn", None)
            if conn is not None:
                conn.close()
                self._local.conn = None

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, close_conn)
        for _ in range(READERS):
            await loop.run_in_executor(self._readers, close_conn)
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        log.info("sqlite store closed path=%s", self.path)
