"""The Flux texts the InfluxDB adapter sends: range, latest, last-seen and event queries.

Only this module and `tasks.py` write Flux. Every text they produce is checked by the
official Flux language service in `tests/collector/test_flux_texts.py`.

Selectors follow Prometheus semantics: a missing label equals "", so a matcher that accepts
"" (`!=`, `!~`, `=""`, `=~".*"`) also accepts series without the tag; regexes are anchored.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fleetpulse.core.samples import is_counter
from fleetpulse.core.selector import Matcher, Selector
from fleetpulse.core.storage import RangeQuery

# Counter rates need the point before the range starts; scrape intervals up to this long count.
RATE_LOOKBACK_MS = 15 * 60_000
FLUX_OPS = {"=": "==", "!=": "!=", "=~": "=~", "!~": "!~"}

# The function that buckets a tier's points into `step` windows, per aggregate.
RAW_WINDOW_FN = {
    "mean": "mean",
    "min": "min",
    "max": "max",
    "last": "last",
    "sum": "sum",
    "count": "count",
}
# Over rollup points the count is the sum of the rollup counts.
ROLLUP_WINDOW_FN = {**RAW_WINDOW_FN, "count": "sum"}
# The rollup field that answers an aggregate for a gauge (counters always read `last`).
GAUGE_ROLLUP_FIELD = {
    "mean": "mean",
    "min": "min",
    "max": "max",
    "last": "mean",
    "count": "count",
}


def flux_string(text: str) -> str:
    """`text` as a Flux string literal (quotes, backslashes and `${` escaped)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def flux_regex(pattern: str) -> str:
    """A Prometheus regex (fully anchored) as a Flux regex literal."""
    return "/^(?:" + pattern.replace("/", "\\/") + ")$/"


def flux_time(ms: int) -> str:
    """An RFC 3339 time literal with milliseconds."""
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def flux_duration_ms(ms: int) -> str:
    return f"{ms}ms"


def column(label: str) -> str:
    return f"r[{flux_string(label)}]"


def matcher_predicate(matcher: Matcher) -> str:
    if matcher.op in ("=~", "!~"):
        test = f"{column(matcher.label)} {FLUX_OPS[matcher.op]} {flux_regex(matcher.value)}"
    else:
        test = f"{column(matcher.label)} {FLUX_OPS[matcher.op]} {flux_string(matcher.value)}"
    if matcher.matches(()):  # accepts "" and so a series without this label
        return f"(not exists {column(matcher.label)} or {test})"
    return test


def selector_predicate(selector: Selector, *, measurement: str | None = None) -> str:
    """The body of `filter(fn: (r) => ...)` for a selector's measurement and label matchers."""
    name = selector.metric if measurement is None else measurement
    parts = [f"r._measurement == {flux_string(name)}"]
    parts.extend(matcher_predicate(m) for m in selector.matchers)
    return " and ".join(parts)


def _counter_rollup(aggregate: str, stepped: bool) -> tuple[str, str]:
    """(field, window fn) for a counter's rollup points, as the SQLite store reads them."""
    if aggregate == "rate":
        return "rate_mean", "mean"
    if aggregate == "count":
        return ("last", "count") if stepped else ("count", "sum")
    return "last", RAW_WINDOW_FN[aggregate]


def range_query(bucket: str, tier: str, query: RangeQuery) -> str:
    """One query for every series matching the selector, from the given tier's bucket.

    Raw points are the field `value`; `rate` is their non-negative per-second derivative.
    Rollup points are a field chosen by the aggregate: `mean`, `min`, `max`, `count` for
    gauges (`sum` is mean * count); `last`, `count` and `rate_mean` for counters. With a step
    the points are bucketed into windows keyed by their start, like the SQLite store.
    """
    selector = query.selector
    if query.aggregate == "rate" and not is_counter(selector.metric):
        raise ValueError(f"rate needs a counter (a name ending in _total), got {selector.metric}")
    start_ms = query.start_ms
    if query.aggregate == "rate" and tier == "raw":
        start_ms -= RATE_LOOKBACK_MS  # the first rate needs the point before the range
    lines = [
        f"from(bucket: {flux_string(bucket)})",
        f"    |> range(start: {flux_time(start_ms)}, stop: {flux_time(query.end_ms + 1)})",
        f"    |> filter(fn: (r) => {selector_predicate(selector)})",
    ]
    window_fn = ROLLUP_WINDOW_FN.get(query.aggregate, "mean")
    if tier == "raw":
        lines.insert(2, '    |> filter(fn: (r) => r._field == "value")')
        window_fn = RAW_WINDOW_FN.get(query.aggregate, "mean")
        if query.aggregate == "rate":
            lines += [
                "    |> derivative(unit: 1s, nonNegative: true, initialZero: true)",
                f"    |> filter(fn: (r) => r._time >= {flux_time(query.start_ms)})",
            ]
    elif is_counter(selector.metric):
        field, window_fn = _counter_rollup(query.aggregate, bool(query.step_ms))
        lines.append(f"    |> filter(fn: (r) => r._field == {flux_string(field)})")
    elif query.aggregate == "sum":
        lines += [
            '    |> filter(fn: (r) => r._field == "mean" or r._field == "count")',
            '    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
            '    |> map(fn: (r) => ({r with _value: r.mean * r.count, _field: "sum"}))',
            '    |> drop(columns: ["mean", "count"])',
        ]
    else:
        field = GAUGE_ROLLUP_FIELD[query.aggregate]
        lines.append(f"    |> filter(fn: (r) => r._field == {flux_string(field)})")
    if query.step_ms:
        lines.append(
            f"    |> aggregateWindow(every: {flux_duration_ms(query.step_ms)}, fn: {window_fn}, "
            'createEmpty: false, timeSrc: "_start")'
        )
    lines.append('    |> drop(columns: ["_start", "_stop", "_field"])')
    return "\n".join(lines) + "\n"


def latest_query(bucket: str, selector: Selector, since_ms: int) -> str:
    """The newest raw point of every matching series written since `since_ms`."""
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"    |> range(start: {flux_time(since_ms)})\n"
        '    |> filter(fn: (r) => r._field == "value")\n'
        f"    |> filter(fn: (r) => {selector_predicate(selector)})\n"
        "    |> last()\n"
        '    |> drop(columns: ["_start", "_stop", "_field"])\n'
    )


def last_seen_query(bucket: str, host: str, since_ms: int, *, field: str = "value") -> str:
    """The newest point where the host's `up` was 1 (raw `value`, or an hourly `max`)."""
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"    |> range(start: {flux_time(since_ms)})\n"
        f'    |> filter(fn: (r) => r._measurement == "up" and r._field == {flux_string(field)})\n'
        f"    |> filter(fn: (r) => r.host == {flux_string(host)} and r._value == 1.0)\n"
        "    |> last()\n"
        '    |> keep(columns: ["_time", "_value", "host"])\n'
    )


def events_query(
    bucket: str,
    measurement: str,
    start_ms: int,
    end_ms: int,
    selector: Selector | None,
    limit: int,
) -> str:
    """Events as one row each: tags stay in the group key, fields become columns."""
    predicate = selector_predicate(selector or Selector(measurement), measurement=measurement)
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"    |> range(start: {flux_time(start_ms)}, stop: {flux_time(end_ms + 1)})\n"
        f"    |> filter(fn: (r) => {predicate})\n"
        '    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        '    |> drop(columns: ["_start", "_stop", "_measurement"])\n'
        f"    |> limit(n: {int(limit)})\n"
    )
