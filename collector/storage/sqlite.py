"""The embedded store: SQLite in WAL mode, compact WITHOUT ROWID tables, one writer thread.

Tables: `series` (id, metric, host, labels as canonical JSON), `raw` (series_id, ts, value) and
the rollup tiers `hourly` / `daily` with the contract's fields (mean, min, max, count for
gauges; last, rate_mean, rate_max and the number of rate intervals in count for counters).
Rollups and expiry run when the collector's schedule calls `maintain`; their watermarks live
in `meta`, written in the same transaction as the rows they cover. Scraped samples reach the
writer through the store's own write queue, which lingers while that pays. All blocking calls
run in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from json.encoder import encode_basestring as encode_json_string
from pathlib import Path
from typing import Any, TypeVar

from collector.rollup import catch_up
from collector.storage.writequeue import WriteQueue
from fleetpulse.core.counters import intervals
from fleetpulse.core.samples import Labels, Sample, Series, is_counter, label_value
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import (
    AGENT_LOGS,
    COUNTER_AGGREGATES,
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
from fleetpulse.core.tiers import (
    ROLLUP_TIERS,
    TIER_BY_NAME,
    RetentionSettings,
    choose_tier,
    retention_ms,
)
from fleetpulse.core.timeutil import now_ms

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    metric TEXT NOT NULL,
    host TEXT NOT NULL,
    labels TEXT NOT NULL,
    UNIQUE (metric, labels)
);
CREATE INDEX IF NOT EXISTS series_by_host ON series (host, metric);
CREATE TABLE IF NOT EXISTS raw (
    series_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value REAL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hourly (
    series_id INTEGER NOT NULL, ts INTEGER NOT NULL,
    mean REAL, min REAL, max REAL, count INTEGER, last REAL, rate_mean REAL, rate_max REAL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS daily (
    series_id INTEGER NOT NULL, ts INTEGER NOT NULL,
    mean REAL, min REAL, max REAL, count INTEGER, last REAL, rate_mean REAL, rate_max REAL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    measurement TEXT NOT NULL, host TEXT NOT NULL, ts INTEGER NOT NULL,
    labels TEXT NOT NULL, fields TEXT NOT NULL,
    PRIMARY KEY (measurement, host, ts, labels)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_time ON events (measurement, ts);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

TABLE_OF_TIER = {"raw": "raw", "hourly": "hourly", "daily": "daily"}

# Bucketed aggregates over raw points. `last` uses SQLite's documented bare-column rule:
# with max(ts), the other columns come from the row holding the maximum.
RAW_BUCKETED = {
    "mean": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "sum": "total(value)",
    "count": "count(value)",
    "last": "value, max(ts)",
}
# The same aggregates over rollup rows: means are weighted by their counts.
ROLLUP_BUCKETED = {
    "mean": "total(mean * count) / total(count)",
    "min": "min(min)",
    "max": "max(max)",
    "sum": "total(mean * count)",
    "count": "total(count)",
    "last": "coalesce(last, mean), max(ts)",
}
ROLLUP_POINT = {
    "mean": "mean",
    "min": "min",
    "max": "max",
    "sum": "mean * count",
    "count": "count",
    "last": "coalesce(last, mean)",
}
# Counter rows hold `last` and rates: value aggregates read the counter's `last` values, and
# `rate` is the stored per-second rate_mean, weighted by its number of intervals when bucketed.
COUNTER_ROLLUP_BUCKETED = {
    "mean": "avg(last)",
    "min": "min(last)",
    "max": "max(last)",
    "sum": "total(last)",
    "count": "count(last)",
    "last": "last, max(ts)",
    "rate": "total(rate_mean * count) / nullif(total(CASE WHEN rate_mean IS NOT NULL "
    "THEN count END), 0)",
}
COUNTER_ROLLUP_POINT = {
    "mean": "last",
    "min": "last",
    "max": "last",
    "sum": "last",
    "count": "count",
    "last": "last",
    "rate": "rate_mean",
}

READERS = 1
PAIRS_MAX = 1_000_000  # distinct label pairs whose JSON text the writer remembers
SERIES_CACHED_MAX = 2_000_000  # series whose ids the writer remembers
LABELS_CACHE_MAX = 1_000_000  # parsed label sets the readers keep
# Counter rates need the point before an hour starts; scrape intervals up to this long count.
RATE_LOOKBACK_MS = 15 * 60_000
IS_COUNTER_SQL = "substr(s.metric, -6) = '_total'"

ROLLUP_HOURLY_GAUGES = f"""
INSERT OR REPLACE INTO hourly (series_id, ts, mean, min, max, count, last, rate_mean, rate_max)
SELECT s.id, :start, avg(r.value), min(r.value), max(r.value), count(r.value), NULL, NULL, NULL
FROM series s CROSS JOIN raw r ON r.series_id = s.id
WHERE NOT {IS_COUNTER_SQL} AND r.ts >= :start AND r.ts < :end AND r.value IS NOT NULL
GROUP BY s.id
"""
# Per interval: the increase (a drop is a reset, so the new value is the increase) over the
# elapsed time. rate_mean = increase / elapsed over the hour; rate_max the fastest interval.
ROLLUP_HOURLY_COUNTERS = f"""
INSERT OR REPLACE INTO hourly (series_id, ts, mean, min, max, count, last, rate_mean, rate_max)
SELECT d.series_id, :start, NULL, NULL, NULL, count(d.dt),
    (SELECT l.value FROM raw l WHERE l.series_id = d.series_id AND l.ts >= :start
        AND l.ts < :end AND l.value IS NOT NULL ORDER BY l.ts DESC LIMIT 1),
    total(d.inc) * 1000.0 / sum(d.dt), max(d.inc * 1000.0 / d.dt)
FROM (
    SELECT series_id, ts, ts - pt AS dt,
        CASE WHEN pv IS NULL THEN NULL WHEN value >= pv THEN value - pv ELSE value END AS inc
    FROM (
        SELECT r.series_id, r.ts, r.value,
            lag(r.value) OVER w AS pv, lag(r.ts) OVER w AS pt
        FROM series s CROSS JOIN raw r ON r.series_id = s.id
        WHERE {IS_COUNTER_SQL} AND r.ts >= :lookback AND r.ts < :end AND r.value IS NOT NULL
        WINDOW w AS (PARTITION BY r.series_id ORDER BY r.ts)
    )
    WHERE ts >= :start
) d
GROUP BY d.series_id
"""
ROLLUP_DAILY_GAUGES = f"""
INSERT OR REPLACE INTO daily (series_id, ts, mean, min, max, count, last, rate_mean, rate_max)
SELECT s.id, :start, total(h.mean * h.count) / total(h.count), min(h.min), max(h.max),
    total(h.count), NULL, NULL, NULL
FROM series s CROSS JOIN hourly h ON h.series_id = s.id
WHERE NOT {IS_COUNTER_SQL} AND h.ts >= :start AND h.ts < :end AND h.count > 0
GROUP BY s.id
"""
ROLLUP_DAILY_COUNTERS = f"""
INSERT OR REPLACE INTO daily (series_id, ts, mean, min, max, count, last, rate_mean, rate_max)
SELECT s.id, :start, NULL, NULL, NULL, total(h.count),
    (SELECT l.last FROM hourly l WHERE l.series_id = s.id AND l.ts >= :start
        AND l.ts < :end AND l.last IS NOT NULL ORDER BY l.ts DESC LIMIT 1),
    total(h.rate_mean * h.count)
        / nullif(total(CASE WHEN h.rate_mean IS NOT NULL THEN h.count END), 0),
    max(h.rate_max)
FROM series s CROSS JOIN hourly h ON h.series_id = s.id
WHERE {IS_COUNTER_SQL} AND h.ts >= :start AND h.ts < :end
GROUP BY s.id
"""
ROLLUP_STATEMENTS = {
    "hourly": (ROLLUP_HOURLY_GAUGES, ROLLUP_HOURLY_COUNTERS),
    "daily": (ROLLUP_DAILY_GAUGES, ROLLUP_DAILY_COUNTERS),
}


def watermark_key(tier: str) -> str:
    return f"rollup.{tier}.next"


def labels_json(labels: Labels) -> str:
    return json.dumps(dict(labels), separators=(",", ":"), ensure_ascii=False)


def labels_from_json(text: str) -> Labels:
    return tuple(sorted(json.loads(text).items()))


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(
        uri, uri=True, timeout=10.0, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA busy_timeout = 10000")
    # A scrape round touches every series' last B-tree page; past the first hours that is far
    # more than any cache we would hold, and the OS page cache serves the rest. 16 MB (it was
    # 64) is resident memory the collector counts against its budget; ingest measured the same.
    conn.execute("PRAGMA cache_size = -16384")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class ReadBatcher:
    """Runs the reads waiting at one moment as one job on the reader thread and answers them
    with one wake-up of the event loop. With 1,000 rule queries in flight, a wake-up per answer
    made the thread and the loop trade the GIL a thousand times: 0.7-0.9 s instead of 0.33 s."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self._waiting: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._scheduled = False

    def submit(self, loop: asyncio.AbstractEventLoop, fn: Callable[[], T]) -> asyncio.Future[T]:
        future: asyncio.Future[T] = loop.create_future()
        self._waiting.append((fn, future))
        if not self._scheduled:
            # dispatch after this loop iteration, so reads issued together travel together
            self._scheduled = True
            loop.call_soon(self._dispatch, loop)
        return future

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._waiting = self._waiting, []
        self._scheduled = False
        try:
            self.pool.submit(self._run_batch, loop, batch)
        except RuntimeError as exc:  # the store is closing
            for _, future in batch:
                if not future.done():
                    future.set_exception(StorageUnavailable(f"sqlite store closed: {exc}"))

    def _run_batch(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Callable[[], Any], asyncio.Future[Any]]],
    ) -> None:
        answers: list[tuple[asyncio.Future[Any], Any, Exception | None]] = []
        for fn, future in batch:
            if future.cancelled():
                continue  # its caller timed out or went away
            try:
                answers.append((future, fn(), None))
            except Exception as exc:  # handed to the caller, who maps it to a StorageError
                answers.append((future, None, exc))
        with contextlib.suppress(RuntimeError):  # the loop closed while we read
            loop.call_soon_threadsafe(self._deliver, answers)

    @staticmethod
    def _deliver(answers: list[tuple[asyncio.Future[Any], Any, Exception | None]]) -> None:
        for future, value, exc in answers:
            if future.done():
                continue
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(value)


class SqliteStorage:
    """Storage on one SQLite file; safe to read from other processes while it writes."""

    def __init__(
        self,
        path: Path,
        retention: RetentionSettings,
        *,
        timeout: float = 30.0,
        flush_interval: float = 0.0,
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
        # writer's cache (the writer thread only): metric name -> labels -> series id, keyed by
        # the series' value, so any caller's samples find their ids, however their label tuples
        # were made. Hashing the labels costs ~50 ns a sample (about 1% of the collector's CPU
        # per sample); the tuples kept as keys are the ones the scrape loops keep anyway.
        self._series_ids: dict[str, dict[Labels, int]] = {}
        self._series_cached = 0
        self._pair_json: dict[tuple[str, str], str] = {}
        # readers' cache: labels JSON -> parsed labels. A pure function of its key, so it never
        # goes stale, also when another process adds or expires series
        self._labels_of_text: dict[str, Labels] = {}

    @classmethod
    async def open(
        cls, path: Path, retention: RetentionSettings, *, flush_interval: float = 0.0
    ) -> SqliteStorage:
        store = cls(path, retention, flush_interval=flush_interval)
        try:
            await store._run(store._writer, store._create_schema)
        except BaseException:
            await store.close()
            raise
        log.info("sqlite store open path=%s", path)
        return store

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            conn.create_function("keeps", 2, self._keep)
            self._local.conn = conn
        return conn

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the thread finishes, and a stopping service would then run on
            async with asyncio.timeout(self.timeout):
                if pool is self._readers:
                    return await self._read_batches.submit(loop, fn)
                return await loop.run_in_executor(pool, fn)
        except TimeoutError:
            raise StorageUnavailable(
                f"sqlite store {self.path} did not answer within {self.timeout:g}s"
            ) from None
        except sqlite3.OperationalError as exc:
            raise StorageUnavailable(f"sqlite store {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StorageError(
                f"sqlite store {self.path} is damaged or not a database: {exc}; "
                "move it aside to start a fresh one"
            ) from exc

    def _create_schema(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn().executescript(SCHEMA)

    # -- writes -------------------------------------------------------------------------

    async def write(self, samples: Sequence[Sample]) -> None:
        if samples:
            await self._run(self._writer, lambda: self._write_sync(samples))

    def _write_sync(self, samples: Sequence[Sample]) -> None:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            rows = self._rows(conn, samples)
            rows.sort()  # in key order, inserts walk the B-tree pages once instead of at random
            # A replayed batch carries the same (series, ts) and must not duplicate.
            conn.executemany(
                "INSERT OR REPLACE INTO raw (series_id, ts, value) VALUES (?, ?, ?)", rows
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._forget_series()  # ids inserted in the rolled-back transaction are gone
            raise

    def _rows(
        self, conn: sqlite3.Connection, samples: Sequence[Sample]
    ) -> list[tuple[int, int, float]]:
        """(series id, ts, value) per sample; series not seen before are registered first, all
        in one go (one at a time, a first scrape of 1,000 x 500 series took ~10 s)."""
        ids = self._series_ids
        try:
            return [(ids[name][labels], ts, value) for name, labels, value, ts in samples]
        except KeyError:
            self._register(conn, samples)
        return [(ids[name][labels], ts, value) for name, labels, value, ts in samples]

    def _forget_series(self) -> None:
        self._series_ids.clear()
        self._series_cached = 0

    def _register(self, conn: sqlite3.Connection, samples: Sequence[Sample]) -> None:
        """Give every series of the batch not in the cache its series id.

        The cache is emptied when it holds too many series, so a source inventing series
        costs lookups, not memory.
        """
        if self._series_cached >= SERIES_CACHED_MAX:
            self._forget_series()
        ids = self._series_ids
        missing: dict[tuple[str, Labels], None] = {}  # in order, each series once
        for name, labels, _, _ in samples:
            known = ids.get(name)
            if known is None or labels not in known:
                missing[name, labels] = None
        keys = list(missing)
        rows = [
            (name, label_value(labels, "host"), self._labels_json(labels)) for name, labels in keys
        ]
        # The writer holds the write lock, so ids past the largest are free: with ids chosen
        # here, no query is needed to learn them unless some series existed already.
        first = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM series").fetchone()[0])
        inserted = conn.executemany(
            "INSERT OR IGNORE INTO series (id, metric, host, labels) VALUES (?, ?, ?, ?)",
            [(first + n, *row) for n, row in enumerate(rows)],
        ).rowcount
        if inserted == len(keys):
            found: Iterable[tuple[int, int]] = enumerate(range(first, first + len(keys)))
        else:  # some were there already (a restart, a cache cleared): look all of them up
            found = self._lookup(conn, rows)
        for n, series_id in found:
            name, labels = keys[n]
            ids.setdefault(name, {})[labels] = int(series_id)
        self._series_cached += len(keys)

    @staticmethod
    def _lookup(
        conn: sqlite3.Connection, rows: list[tuple[str, str, str]]
    ) -> list[tuple[int, int]]:
        """(index in rows, series id) for every (metric, host, labels JSON) row."""
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS wanted "
            "(n INTEGER PRIMARY KEY, metric TEXT NOT NULL, labels TEXT NOT NULL)"
        )
        conn.executemany(
            "INSERT INTO temp.wanted (n, metric, labels) VALUES (?, ?, ?)",
            [(n, metric, text) for n, (metric, _, text) in enumerate(rows)],
        )
        found = conn.execute(
            "SELECT t.n, s.id FROM temp.wanted t "
            "JOIN series s ON s.metric = t.metric AND s.labels = t.labels"
        ).fetchall()
        conn.execute("DELETE FROM temp.wanted")
        return found

    def _share(self, pair: tuple[str, str]) -> tuple[str, str]:
        """Remember a label pair's JSON text (series of many targets share most pairs)."""
        if len(self._pair_json) >= PAIRS_MAX:
            # only the memo is lost; a target inventing labels cannot grow it for ever
            self._pair_json.clear()
        self._pair_json[pair] = encode_json_string(pair[0]) + ":" + encode_json_string(pair[1])
        return pair

    def _labels_json(self, labels: Labels) -> str:
        """labels_json(labels) from the pairs' cached texts (json.dumps was most of the cost
        of a first scrape)."""
        texts = self._pair_json
        return "{" + ",".join([texts.get(p) or (self._share(p) and texts[p]) for p in labels]) + "}"

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
            await self._run(self._writer, lambda: self._write_events_sync(measurement, events))

    def _write_events_sync(self, measurement: str, events: Sequence[Event]) -> None:
        rows = [
            (
                measurement,
                next((v for k, v in e.labels if k == "host"), ""),
                e.ts_ms,
                labels_json(e.labels),
                json.dumps(dict(e.fields), separators=(",", ":"), ensure_ascii=False),
            )
            for e in events
        ]
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO events (measurement, host, ts, labels, fields) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

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
            lambda: self._events_sync(measurement, start_ms, end_ms, selector, limit),
        )

    def _events_sync(
        self, measurement: str, start_ms: int, end_ms: int, selector: Selector | None, limit: int
    ) -> list[Event]:
        host = selector.equal_value("host") if selector else None
        sql = "SELECT ts, labels, fields FROM events WHERE measurement = ? AND ts >= ? AND ts <= ?"
        params: list[object] = [measurement, start_ms, end_ms]
        if host is not None:
            sql += " AND host = ?"
            params.append(host)
        out: list[Event] = []
        for ts, labels_text, fields_text in self._conn().execute(sql + " ORDER BY ts", params):
            labels = labels_from_json(labels_text)
            if selector is None or selector.matches(labels):
                out.append(Event(int(ts), labels, tuple(json.loads(fields_text).items())))
                if len(out) >= limit:
                    break
        return out

    def _keep(self, series_id: int, text: str) -> int:
        """SQL `keeps(s.id, s.labels)`: whether the running query's selector matches a series;
        the labels of those it keeps are noted for the result. Called once per series."""
        selector, matched = self._local.matching
        labels = self._labels_of_text.get(text)
        if labels is None:
            if len(self._labels_of_text) >= LABELS_CACHE_MAX:
                self._labels_of_text.clear()
            labels = self._labels_of_text[text] = labels_from_json(text)
        if selector.matches(labels):
            matched[series_id] = labels
            return 1
        return 0

    def _select(
        self, selector: Selector, sql: str, params: dict[str, object]
    ) -> tuple[dict[int, Labels], list[tuple[int, list[Any]]]]:
        """Run one statement over `series s` (the selector's series) joined to a table; rows
        start with s.id and come back grouped per series, with the labels of each series.

        `{series}` in `sql` becomes the conditions that pick the series: the metric (and host)
        through an index, then the other matchers, tested once per series by `_keep`."""
        where = "s.metric = :metric"
        params = {**params, "metric": selector.metric}
        host = selector.equal_value("host")
        if host is not None:
            where += " AND s.host = :host"
            params["host"] = host
        where += " AND keeps(s.id, s.labels)"
        matched: dict[int, Labels] = {}
        conn = self._conn()
        self._local.matching = (selector, matched)
        try:
            rows = conn.execute(sql.replace("{series}", where), params).fetchall()
        finally:
            self._local.matching = None
        grouped: dict[int, list[Any]] = {}
        for row in rows:
            same = grouped.get(row[0])
            if same is None:
                grouped[row[0]] = [row]
            else:
                same.append(row)
        return matched, list(grouped.items())

    async def query_range(self, query: RangeQuery) -> RangeResult:
        if query.aggregate not in RAW_BUCKETED and query.aggregate not in COUNTER_AGGREGATES:
            raise StorageError(f"unknown aggregate {query.aggregate!r}")
        if query.aggregate in COUNTER_AGGREGATES and not is_counter(query.selector.metric):
            raise StorageError(
                f"aggregate {query.aggregate} needs a counter (a name ending in _total), "
                f"got {query.selector.metric!r}"
            )
        tier = choose_tier(query.start_ms, now_ms(), self.retention)
        series = await self._run(self._readers, lambda: self._range_sync(query, tier.name))
        return RangeResult(tier.name, series)

    def _range_sync(self, query: RangeQuery, tier: str) -> list[Series]:
        """One statement for all the selector's series (one per series made a 1,000-rule
        cycle over 100 hosts take seconds)."""
        table = TABLE_OF_TIER[tier]
        counter = is_counter(query.selector.metric)
        params: dict[str, object] = {"start": query.start_ms, "end": query.end_ms}
        if tier == "raw" and query.aggregate == "rate":
            return self._raw_rates(query)
        if query.step_ms:
            if tier == "raw":
                agg = RAW_BUCKETED[query.aggregate]
            elif counter:
                agg = COUNTER_ROLLUP_BUCKETED[query.aggregate]
            else:
                agg = ROLLUP_BUCKETED[query.aggregate]
            sql = (
                f"SELECT s.id, (r.ts / :step) * :step AS t, {agg} "
                f"FROM series s CROSS JOIN {table} r ON r.series_id = s.id "
                "WHERE {series} AND r.ts >= :start AND r.ts <= :end GROUP BY s.id, t"
            )
            params["step"] = query.step_ms
        else:
            if tier == "raw":
                column = "value"
            elif counter:
                column = COUNTER_ROLLUP_POINT[query.aggregate]
            else:
                column = ROLLUP_POINT[query.aggregate]
            sql = (
                f"SELECT s.id, r.ts, {column} "
                f"FROM series s CROSS JOIN {table} r ON r.series_id = s.id "
                "WHERE {series} AND r.ts >= :start AND r.ts <= :end"
            )
        labels, grouped = self._select(query.selector, sql, params)
        out = []
        for series_id, rows in grouped:
            points = [(row[1], float(row[2])) for row in rows if row[2] is not None]
            if points:
                points.sort()  # the index hands them over in order; this only makes sure
                out.append(Series(query.selector.metric, labels[series_id], points))
        return out

    def _raw_rates(self, query: RangeQuery) -> list[Series]:
        """The non-negative per-second derivative of a counter's raw points: one point per
        interval, or with a step the increase over the elapsed time of the intervals ending in
        each bucket. Each series' rows start with its last point before the range, if any."""
        sql = (
            "SELECT s.id, r.ts, r.value FROM series s CROSS JOIN raw r ON r.series_id = s.id "
            "WHERE {series} AND r.ts <= :end AND r.value IS NOT NULL AND r.ts >= coalesce("
            "(SELECT b.ts FROM raw b WHERE b.series_id = s.id AND b.ts < :start "
            "AND b.value IS NOT NULL ORDER BY b.ts DESC LIMIT 1), :start)"
        )
        labels, grouped = self._select(
            query.selector, sql, {"start": query.start_ms, "end": query.end_ms}
        )
        out = []
        for series_id, rows in grouped:
            points = sorted((int(row[1]), float(row[2])) for row in rows)
            before = points.pop(0) if points and points[0][0] < query.start_ms else None
            rates = self._rates(intervals(points, before), query.step_ms)
            if rates:
                out.append(Series(query.selector.metric, labels[series_id], rates))
        return out

    @staticmethod
    def _rates(
        intervals: list[tuple[int, float, int]], step: int | None
    ) -> list[tuple[int, float]]:
        if not step:
            return [(ts, inc * 1000.0 / dt) for ts, inc, dt in intervals]
        buckets: dict[int, list[float]] = {}
        for ts, inc, dt in intervals:
            bucket = buckets.setdefault(ts // step * step, [0.0, 0.0])
            bucket[0] += inc
            bucket[1] += dt
        return [(t, inc * 1000.0 / dt) for t, (inc, dt) in sorted(buckets.items())]

    async def query_latest(self, selector: Selector, since_ms: int) -> list[LatestValue]:
        return await self._run(self._readers, lambda: self._latest_sync(selector, since_ms))

    def _latest_sync(self, selector: Selector, since_ms: int) -> list[LatestValue]:
        # the subquery is one index seek per series (SQLite's min/max optimisation)
        sql = (
            "SELECT s.id, r.ts, r.value FROM series s CROSS JOIN raw r ON r.series_id = s.id "
            "WHERE {series} AND r.ts = "
            "(SELECT max(m.ts) FROM raw m WHERE m.series_id = s.id AND m.ts >= :since)"
        )
        labels, grouped = self._select(selector, sql, {"since": since_ms})
        out = []
        for series_id, rows in grouped:
            _, ts, value = rows[-1]
            if value is not None:
                out.append(LatestValue(selector.metric, labels[series_id], int(ts), float(value)))
        return out

    async def last_seen(self, host: str) -> int | None:
        return await self._run(self._readers, lambda: self._last_seen_sync(host))

    def _last_seen_sync(self, host: str) -> int | None:
        row = (
            self._conn()
            .execute(
                "SELECT max(r.ts) FROM series s JOIN raw r ON r.series_id = s.id "
                "WHERE s.host = ? AND s.metric = 'up' AND r.value = 1",
                (host,),
            )
            .fetchone()
        )
        return int(row[0]) if row and row[0] is not None else None

    # -- rollups and expiry ----------------------------------------------------------------

    async def maintain(self, now_ms: int) -> MaintenanceReport:
        return await catch_up(self, now_ms)

    async def rollup_watermark(self, tier: str) -> int | None:
        """Where the next `tier` rollup starts (ms), or None before the first one."""
        return await self._run(self._writer, lambda: self._meta_int(watermark_key(tier)))

    def _meta_int(self, key: str) -> int | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else None

    async def earliest(self, tier: str) -> int | None:
        """The oldest timestamp (ms) stored in a tier, or None when it is empty."""
        table = TABLE_OF_TIER[tier]
        # one index seek per series instead of a scan of the whole table
        sql = f"SELECT min((SELECT min(ts) FROM {table} WHERE series_id = s.id)) FROM series s"

        def earliest_sync() -> int | None:
            row = self._conn().execute(sql).fetchone()
            return int(row[0]) if row and row[0] is not None else None

        return await self._run(self._writer, earliest_sync)

    async def rollup(self, tier: str, start_ms: int) -> int:
        """Roll the period starting at `start_ms` up into `tier` and move the tier's watermark
        past it, in one transaction. Idempotent: rows are keyed by (series, period start)."""
        return await self._run(self._writer, lambda: self._rollup_sync(tier, start_ms))

    def _rollup_sync(self, tier: str, start_ms: int) -> int:
        period = TIER_BY_NAME[tier].resolution_ms
        statements = ROLLUP_STATEMENTS[tier]
        params = {
            "start": start_ms,
            "end": start_ms + period,
            "lookback": start_ms - RATE_LOOKBACK_MS,
        }
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            rows = sum(conn.execute(sql, params).rowcount for sql in statements)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                "SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                (watermark_key(tier), str(start_ms + period)),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return rows

    async def expire(self, now_ms: int) -> dict[str, int]:
        """Delete what is past each tier's retention (never source rows a rollup has not read
        yet), then series left with no data; returns the rows deleted per table."""
        return await self._run(self._writer, lambda: self._expire_sync(now_ms))

    def _expire_sync(self, now_ms: int) -> dict[str, int]:
        conn = self._conn()
        deleted: dict[str, int] = {}
        conn.execute("BEGIN")
        try:
            for tier in TIER_BY_NAME:
                cutoff = now_ms - retention_ms(self.retention, tier)
                # expiry never deletes source rows a rollup has not read yet
                reader = next((t.name for t in ROLLUP_TIERS if t.source == tier), None)
                if reader is not None:
                    # before its reader's first rollup, a source tier keeps everything
                    read_up_to = self._meta_int(watermark_key(reader))
                    cutoff = min(cutoff, read_up_to if read_up_to is not None else 0)
                deleted[tier] = conn.execute(
                    f"DELETE FROM {TABLE_OF_TIER[tier]} "
                    "WHERE series_id IN (SELECT id FROM series) AND ts < ?",
                    (cutoff,),
                ).rowcount
            # logs live as long as raw samples; alert history as long as the daily tier
            deleted["events"] = conn.execute(
                "DELETE FROM events WHERE (measurement = ? AND ts < ?) OR ts < ?",
                (
                    AGENT_LOGS,
                    now_ms - retention_ms(self.retention, "raw"),
                    now_ms - retention_ms(self.retention, "daily"),
                ),
            ).rowcount
            gone = conn.execute(
                "SELECT id, metric, labels FROM series "
                "WHERE NOT EXISTS (SELECT 1 FROM raw WHERE series_id = id) "
                "AND NOT EXISTS (SELECT 1 FROM hourly WHERE series_id = id) "
                "AND NOT EXISTS (SELECT 1 FROM daily WHERE series_id = id)"
            ).fetchall()
            conn.executemany("DELETE FROM series WHERE id = ?", [(row[0],) for row in gone])
            deleted["series"] = len(gone)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        # the writer's cache must not name series that are gone (their ids may be reused)
        gone_ids = {row[0] for row in gone}
        for metric in {row[1] for row in gone}:
            known = self._series_ids.get(metric, {})
            for labels in [k for k, series_id in known.items() if series_id in gone_ids]:
                del known[labels]
                self._series_cached -= 1
        return deleted

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
