"""The embedded store: SQLite in WAL mode, compact WITHOUT ROWID tables, one writer thread.

Tables: `series` (id, metric, host, labels as canonical JSON), `raw` (series_id, ts, value) and
the rollup tiers `hourly` / `daily` with the contract's fields (mean, min, max, count for
gauges; last, rate_mean, rate_max for counters). All blocking calls run in threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from collector.storage.port import (
    EVENT_MEASUREMENTS,
    Event,
    LatestValue,
    RangeQuery,
    RangeResult,
    StorageError,
    StorageUnavailable,
)
from collector.storage.settings import RetentionSettings
from collector.storage.tiers import choose_tier
from fleetpulse.samples import Labels, Sample, Series
from fleetpulse.selector import Selector
from fleetpulse.timeutil import now_ms

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
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class SqliteStorage:
    """Storage on one SQLite file; safe to read from other processes while it writes."""

    def __init__(self, path: Path, retention: RetentionSettings, *, timeout: float = 30.0) -> None:
        self.path = path
        self.retention = retention
        self.timeout = timeout
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-write")
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._series_ids: dict[tuple[str, Labels], int] = {}

    @classmethod
    async def open(cls, path: Path, retention: RetentionSettings) -> SqliteStorage:
        store = cls(path, retention)
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
            self._local.conn = conn
        return conn

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(pool, fn), self.timeout)
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

    def _series_id(self, conn: sqlite3.Connection, name: str, labels: Labels) -> int:
        key = (name, labels)
        series_id = self._series_ids.get(key)
        if series_id is None:
            text = labels_json(labels)
            host = next((v for k, v in labels if k == "host"), "")
            conn.execute(
                "INSERT OR IGNORE INTO series (metric, host, labels) VALUES (?, ?, ?)",
                (name, host, text),
            )
            row = conn.execute(
                "SELECT id FROM series WHERE metric = ? AND labels = ?", (name, text)
            ).fetchone()
            series_id = int(row[0])
            self._series_ids[key] = series_id
        return series_id

    def _write_sync(self, samples: Sequence[Sample]) -> None:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            rows = [(self._series_id(conn, s.name, s.labels), s.ts_ms, s.value) for s in samples]
            # A replayed batch carries the same (series, ts) and must not duplicate.
            conn.executemany(
                "INSERT OR REPLACE INTO raw (series_id, ts, value) VALUES (?, ?, ?)", rows
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._series_ids.clear()  # ids inserted in the rolled-back transaction are gone
            raise

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

    def _matching_series(
        self, conn: sqlite3.Connection, selector: Selector
    ) -> list[tuple[int, Labels]]:
        host = selector.equal_value("host")
        if host is None:
            rows = conn.execute(
                "SELECT id, labels FROM series WHERE metric = ?", (selector.metric,)
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT id, labels FROM series WHERE host = ? AND metric = ?",
                (host, selector.metric),
            ).fetchall()
        out = []
        for series_id, text in rows:
            labels = labels_from_json(text)
            if selector.matches(labels):
                out.append((int(series_id), labels))
        return out

    async def query_range(self, query: RangeQuery) -> RangeResult:
        if query.aggregate not in RAW_BUCKETED:
            raise StorageError(f"unknown aggregate {query.aggregate!r}")
        tier = choose_tier(query.start_ms, now_ms(), self.retention)
        series = await self._run(self._readers, lambda: self._range_sync(query, tier.name))
        return RangeResult(tier.name, series)

    def _range_sync(self, query: RangeQuery, tier: str) -> list[Series]:
        conn = self._conn()
        table = TABLE_OF_TIER[tier]
        out = []
        for series_id, labels in self._matching_series(conn, query.selector):
            params: tuple[int, ...]
            if query.step_ms:
                agg = (RAW_BUCKETED if tier == "raw" else ROLLUP_BUCKETED)[query.aggregate]
                sql = (
                    f"SELECT (ts / ?) * ? AS t, {agg} FROM {table} "
                    "WHERE series_id = ? AND ts >= ? AND ts <= ? GROUP BY t ORDER BY t"
                )
                params = (query.step_ms, query.step_ms, series_id, query.start_ms, query.end_ms)
            else:
                column = "value" if tier == "raw" else ROLLUP_POINT[query.aggregate]
                sql = (
                    f"SELECT ts, {column} FROM {table} "
                    "WHERE series_id = ? AND ts >= ? AND ts <= ? ORDER BY ts"
                )
                params = (series_id, query.start_ms, query.end_ms)
            points = [
                (int(row[0]), float(row[1]))
                for row in conn.execute(sql, params)
                if row[1] is not None
            ]
            if points:
                out.append(Series(query.selector.metric, labels, points))
        return out

    async def query_latest(self, selector: Selector, since_ms: int) -> list[LatestValue]:
        return await self._run(self._readers, lambda: self._latest_sync(selector, since_ms))

    def _latest_sync(self, selector: Selector, since_ms: int) -> list[LatestValue]:
        conn = self._conn()
        out = []
        for series_id, labels in self._matching_series(conn, selector):
            row = conn.execute(
                "SELECT value, max(ts) FROM raw WHERE series_id = ? AND ts >= ?",
                (series_id, since_ms),
            ).fetchone()
            if row is not None and row[1] is not None and row[0] is not None:
                out.append(LatestValue(selector.metric, labels, int(row[1]), float(row[0])))
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

    async def close(self) -> None:
        def close_conn() -> None:
            conn = getattr(self._local, "conn", None)
            if conn is not None:
                conn.close()
                self._local.conn = None

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, close_conn)
        for _ in range(2):
            await loop.run_in_executor(self._readers, close_conn)
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        log.info("sqlite store closed path=%s", self.path)
