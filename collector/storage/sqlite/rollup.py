"""Rollups raw -> hourly -> daily and expiry, each one transaction on the writer's connection.

A rollup moves its tier's watermark (the next period to roll up, in `meta`) in the same
transaction as the rows it writes; expiry never deletes rows of a source tier that its
rollup has not read yet. Which periods are due is `catchup.py`'s business.
"""

from __future__ import annotations

import sqlite3

from collector.storage.sqlite.schema import TABLE_OF_TIER, rollback
from fleetpulse.core.storage import AGENT_LOGS
from fleetpulse.core.tiers import ROLLUP_TIERS, TIER_BY_NAME, RetentionSettings, retention_ms

# Counter rates need the point before an hour starts; scrape intervals up to this long count.
RATE_LOOKBACK_MS = 15 * 60_000
IS_COUNTER_SQL = "substr(s.metric, -6) = '_total'"  # fleetpulse.core.samples.is_counter

ROLLUP_HOURLY_GAUGES = f"""
INSERT OR REPLACE INTO hourly (series_id, ts, mean, min, max, count, last, rate_mean, rate_max)
SELECT s.id, :start, avg(r.value), min(r.value), max(r.value), count(r.value), NULL, NULL, NULL
FROM series s CROSS JOIN raw r ON r.series_id = s.id
WHERE NOT {IS_COUNTER_SQL} AND r.ts >= :start AND r.ts < :end AND r.value IS NOT NULL
GROUP BY s.id
"""
# Per interval: the increase (a drop is a reset, so the new value is the increase, as in
# fleetpulse.core.counters) over the elapsed time. rate_mean = increase / elapsed over the
# hour; rate_max the fastest interval.
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


def watermark(conn: sqlite3.Connection, tier: str) -> int | None:
    """Where the next `tier` rollup starts (ms), or None before the first one."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (watermark_key(tier),)).fetchone()
    return int(row[0]) if row else None


def earliest(conn: sqlite3.Connection, tier: str) -> int | None:
    """The oldest timestamp (ms) stored in a tier, or None when it is empty."""
    table = TABLE_OF_TIER[tier]
    # one index seek per series instead of a scan of the whole table
    sql = f"SELECT min((SELECT min(ts) FROM {table} WHERE series_id = s.id)) FROM series s"
    row = conn.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def roll_up(conn: sqlite3.Connection, tier: str, start_ms: int) -> int:
    """Roll the period starting at `start_ms` up into `tier` and move the tier's watermark past
    it; returns the rows written. Idempotent: rows are keyed by (series, period start)."""
    period = TIER_BY_NAME[tier].resolution_ms
    params = {"start": start_ms, "end": start_ms + period, "lookback": start_ms - RATE_LOOKBACK_MS}
    conn.execute("BEGIN")
    try:
        rows = sum(conn.execute(sql, params).rowcount for sql in ROLLUP_STATEMENTS[tier])
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
            "SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
            (watermark_key(tier), str(start_ms + period)),
        )
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return rows


def expire(
    conn: sqlite3.Connection, retention: RetentionSettings, now_ms: int
) -> tuple[dict[str, int], list[tuple[int, str]]]:
    """Delete what is past each tier's retention, then series left with no data; returns the
    rows deleted per table and the (id, metric) of the series deleted."""
    deleted: dict[str, int] = {}
    conn.execute("BEGIN")
    try:
        for tier in TIER_BY_NAME:
            cutoff = now_ms - retention_ms(retention, tier)
            reader = next((t.name for t in ROLLUP_TIERS if t.source == tier), None)
            if reader is not None:
                # before its reader's first rollup, a source tier keeps everything
                read_up_to = watermark(conn, reader)
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
                now_ms - retention_ms(retention, "raw"),
                now_ms - retention_ms(retention, "daily"),
            ),
        ).rowcount
        gone = [
            (int(series_id), str(metric))
            for series_id, metric in conn.execute(
                "SELECT id, metric FROM series "
                "WHERE NOT EXISTS (SELECT 1 FROM raw WHERE series_id = id) "
                "AND NOT EXISTS (SELECT 1 FROM hourly WHERE series_id = id) "
                "AND NOT EXISTS (SELECT 1 FROM daily WHERE series_id = id)"
            )
        ]
        conn.executemany("DELETE FROM series WHERE id = ?", [(series_id,) for series_id, _ in gone])
        deleted["series"] = len(gone)
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return deleted, gone
