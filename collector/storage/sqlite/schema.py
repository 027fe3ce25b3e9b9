"""The file's layout: its tables, labels stored as canonical JSON, and how it is opened.

Tables: `series` (id, metric, host, labels as canonical JSON), `raw` (series_id, ts, value) and
the rollup tiers `hourly` / `daily` with the contract's fields (mean, min, max, count for
gauges; last, rate_mean, rate_max and the number of rate intervals in count for counters),
`events` (alert history, exporter logs) and `meta` (the rollup watermarks). Keyed tables are
WITHOUT ROWID: a row is stored once, in its key's B-tree.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import suppress
from pathlib import Path

from fleetpulse.core.samples import Labels

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


def labels_json(labels: Labels) -> str:
    return json.dumps(dict(labels), separators=(",", ":"), ensure_ascii=False)


def labels_from_json(text: str) -> Labels:
    return tuple(sorted(json.loads(text).items()))


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        f"file:{path}", uri=True, timeout=10.0, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA busy_timeout = 10000")
    # A scrape round touches every series' last B-tree page; past the first hours that is far
    # more than any cache we would hold, and the OS page cache serves the rest. 16 MB (it was
    # 64) is resident memory the collector counts against its budget; ingest measured the same.
    conn.execute("PRAGMA cache_size = -16384")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back what is left of the transaction. SQLite rolls a transaction back by itself
    on some errors (a full disk: SQLITE_FULL), and a ROLLBACK then fails with "no transaction
    is active": that error must not replace the one that says why the write failed."""
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
