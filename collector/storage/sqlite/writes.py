"""The write transactions: a batch of samples, a batch of events, each all or nothing."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from collector.storage.sqlite.schema import labels_json, rollback
from collector.storage.sqlite.series import SeriesIds
from fleetpulse.core.samples import Sample
from fleetpulse.core.storage import Event


def write_samples(conn: sqlite3.Connection, series: SeriesIds, samples: Sequence[Sample]) -> None:
    conn.execute("BEGIN")
    try:
        rows = series.rows(conn, samples)
        rows.sort()  # in key order, inserts walk the B-tree pages once instead of at random
        # A replayed batch carries the same (series, ts) and must not duplicate.
        conn.executemany("INSERT OR REPLACE INTO raw (series_id, ts, value) VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        series.forget()  # ids inserted in the rolled-back transaction are gone
        raise


def write_events(conn: sqlite3.Connection, measurement: str, events: Sequence[Event]) -> None:
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
    conn.execute("BEGIN")
    try:
        conn.executemany(
            "INSERT OR REPLACE INTO events (measurement, host, ts, labels, fields) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
