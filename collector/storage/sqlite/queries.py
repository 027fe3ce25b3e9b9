"""The reads: range, latest-value and event queries, each one statement for all the series a
selector picks, on the reader thread's connection."""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

from collector.storage.sqlite.schema import TABLE_OF_TIER, labels_from_json
from fleetpulse.core.counters import intervals
from fleetpulse.core.samples import Labels, Series, is_counter
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import (
    COUNTER_AGGREGATES,
    Event,
    LatestValue,
    RangeQuery,
    StorageError,
)

LABELS_CACHE_MAX = 1_000_000  # parsed label sets the readers keep

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


def check(query: RangeQuery) -> None:
    """Raise StorageError for an aggregate the query cannot have."""
    if query.aggregate not in RAW_BUCKETED and query.aggregate not in COUNTER_AGGREGATES:
        raise StorageError(f"unknown aggregate {query.aggregate!r}")
    if query.aggregate in COUNTER_AGGREGATES and not is_counter(query.selector.metric):
        raise StorageError(
            f"aggregate {query.aggregate} needs a counter (a name ending in _total), "
            f"got {query.selector.metric!r}"
        )


class SelectorQueries:
    """Range and latest-value queries of the series a selector picks. `keep` is the SQL
    function `keeps` that every connection registers."""

    def __init__(self) -> None:
        self._matching = threading.local()  # (selector, matched) of the statement running
        # labels JSON -> parsed labels. A pure function of its key, so it never goes stale,
        # also when another process adds or expires series
        self._labels_of_text: dict[str, Labels] = {}

    def keep(self, series_id: int, text: str) -> int:
        """SQL `keeps(s.id, s.labels)`: whether the running query's selector matches a series;
        the labels of those it keeps are noted for the result. Called once per series."""
        selector, matched = self._matching.now
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
        self, conn: sqlite3.Connection, selector: Selector, sql: str, params: dict[str, object]
    ) -> tuple[dict[int, Labels], list[tuple[int, list[Any]]]]:
        """Run one statement over `series s` (the selector's series) joined to a table; rows
        start with s.id and come back grouped per series, with the labels of each series.

        `{series}` in `sql` becomes the conditions that pick the series: the metric (and host)
        through an index, then the other matchers, tested once per series by `keep`."""
        where = "s.metric = :metric"
        params = {**params, "metric": selector.metric}
        host = selector.equal_value("host")
        if host is not None:
            where += " AND s.host = :host"
            params["host"] = host
        where += " AND keeps(s.id, s.labels)"
        matched: dict[int, Labels] = {}
        self._matching.now = (selector, matched)
        try:
            rows = conn.execute(sql.replace("{series}", where), params).fetchall()
        finally:
            self._matching.now = None
        grouped: dict[int, list[Any]] = {}
        for row in rows:
            same = grouped.get(row[0])
            if same is None:
                grouped[row[0]] = [row]
            else:
                same.append(row)
        return matched, list(grouped.items())

    def range(self, conn: sqlite3.Connection, query: RangeQuery, tier: str) -> list[Series]:
        """One statement for all the selector's series (one per series made a 1,000-rule
        cycle over 100 hosts take seconds)."""
        table = TABLE_OF_TIER[tier]
        counter = is_counter(query.selector.metric)
        params: dict[str, object] = {"start": query.start_ms, "end": query.end_ms}
        if tier == "raw" and query.aggregate == "rate":
            return self._raw_rates(conn, query)
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
        labels, grouped = self._select(conn, query.selector, sql, params)
        out = []
        for series_id, rows in grouped:
            points = [(row[1], float(row[2])) for row in rows if row[2] is not None]
            if points:
                points.sort()  # the index hands them over in order; this only makes sure
                out.append(Series(query.selector.metric, labels[series_id], points))
        return out

    def _raw_rates(self, conn: sqlite3.Connection, query: RangeQuery) -> list[Series]:
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
            conn, query.selector, sql, {"start": query.start_ms, "end": query.end_ms}
        )
        out = []
        for series_id, rows in grouped:
            points = sorted((int(row[1]), float(row[2])) for row in rows)
            before = points.pop(0) if points and points[0][0] < query.start_ms else None
            rates = _rates(intervals(points, before), query.step_ms)
            if rates:
                out.append(Series(query.selector.metric, labels[series_id], rates))
        return out

    def latest(
        self, conn: sqlite3.Connection, selector: Selector, since_ms: int
    ) -> list[LatestValue]:
        # the subquery is one index seek per series (SQLite's min/max optimisation)
        sql = (
            "SELECT s.id, r.ts, r.value FROM series s CROSS JOIN raw r ON r.series_id = s.id "
            "WHERE {series} AND r.ts = "
            "(SELECT max(m.ts) FROM raw m WHERE m.series_id = s.id AND m.ts >= :since)"
        )
        labels, grouped = self._select(conn, selector, sql, {"since": since_ms})
        out = []
        for series_id, rows in grouped:
            _, ts, value = rows[-1]
            if value is not None:
                out.append(LatestValue(selector.metric, labels[series_id], int(ts), float(value)))
        return out


def _rates(spans: list[tuple[int, float, int]], step: int | None) -> list[tuple[int, float]]:
    if not step:
        return [(ts, inc * 1000.0 / dt) for ts, inc, dt in spans]
    buckets: dict[int, list[float]] = {}
    for ts, inc, dt in spans:
        bucket = buckets.setdefault(ts // step * step, [0.0, 0.0])
        bucket[0] += inc
        bucket[1] += dt
    return [(t, inc * 1000.0 / dt) for t, (inc, dt) in sorted(buckets.items())]


def events(
    conn: sqlite3.Connection,
    measurement: str,
    start_ms: int,
    end_ms: int,
    selector: Selector | None,
    limit: int,
) -> list[Event]:
    host = selector.equal_value("host") if selector else None
    sql = "SELECT ts, labels, fields FROM events WHERE measurement = ? AND ts >= ? AND ts <= ?"
    params: list[object] = [measurement, start_ms, end_ms]
    if host is not None:
        sql += " AND host = ?"
        params.append(host)
    out: list[Event] = []
    for ts, labels_text, fields_text in conn.execute(sql + " ORDER BY ts", params):
        labels = labels_from_json(labels_text)
        if selector is None or selector.matches(labels):
            out.append(Event(int(ts), labels, tuple(json.loads(fields_text).items())))
            if len(out) >= limit:
                break
    return out


def last_seen(conn: sqlite3.Connection, host: str) -> int | None:
    row = conn.execute(
        "SELECT max(r.ts) FROM series s JOIN raw r ON r.series_id = s.id "
        "WHERE s.host = ? AND s.metric = 'up' AND r.value = 1",
        (host,),
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else None
