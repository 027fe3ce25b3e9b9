"""Flux text for dashboard queries: the tier choice, gauges, counter rates, latest values.

Every metric query starts with the same preamble that picks the bucket from the dashboard's
time range exactly as `fleetpulse.core.tiers.choose_tier` does for the API: raw while the
raw bucket still holds the range's start, else hourly while that holds it, else daily.
Measurement and field names always appear as `r._measurement == "name"` and in the
`*_field = ...` lines, which is what the tests read back to check them against the exporter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fleetpulse.core.catalog import BY_NAME
from grafana.contract import RAW_FIELD, Buckets

NS_PER_SECOND = 1_000_000_000
RANGE = "range(start: v.timeRangeStart, stop: v.timeRangeStop)"
HOST_IS = 'r.host == "${host}"'
HOSTS_MATCH = "r.host =~ /^${host:regex}$/"


def tier_preamble(buckets: Buckets) -> str:
    """Flux that sets `bucket` from the dashboard range and `raw` when it is the raw tier."""
    tiers = buckets.tiers()
    choice = f'"{tiers[-1][0]}"'
    for name, retention in reversed(tiers[:-1]):
        ns = int(retention * NS_PER_SECOND)
        choice = f'if tier_start >= tier_now - {ns} then "{name}" else {choice}'
    return (
        "// Tier: the same rule as the API (fleetpulse/core/tiers.py choose_tier).\n"
        "tier_start = int(v: v.timeRangeStart)\n"
        "tier_now = int(v: now())\n"
        f"bucket = {choice}\n"
        f'raw = bucket == "{buckets.raw}"\n'
    )


def measurement_filter(measurements: Sequence[str], where: str = "") -> str:
    names = " or ".join(f'r._measurement == "{name}"' for name in measurements)
    if len(measurements) > 1:
        names = f"({names})"
    return f"filter(fn: (r) => {names}{f' and {where}' if where else ''})"


def series_column(names: Mapping[str, str]) -> str:
    """A `series` column naming each measurement (used / total, receive / transmit)."""
    items = list(names.items())
    expr = f'"{items[-1][1]}"'
    for measurement, label in reversed(items[:-1]):
        expr = f'if r._measurement == "{measurement}" then "{label}" else {expr}'
    return f"map(fn: (r) => ({{r with series: {expr}}}))"


def columns(names: Sequence[str]) -> str:
    """The inside of a Flux array of column names."""
    return ", ".join(f'"{name}"' for name in names)


def shape(labels: Sequence[str]) -> list[str]:
    """Keep time, value and the legend labels, one table per series for Grafana."""
    return [
        f"keep(columns: [{columns(('_time', '_value', *labels))}])",
        f"group(columns: [{columns(labels)}])",
    ]


def pipeline(head: str, steps: Sequence[str]) -> str:
    return head + "".join(f"\n    |> {step}" for step in steps) + "\n"


def _check_kind(measurements: Sequence[str], kind: str) -> None:
    for name in measurements:
        if BY_NAME[name].kind != kind:
            raise ValueError(f"{name} is a {BY_NAME[name].kind}, not a {kind}")


def gauge(
    buckets: Buckets,
    measurements: Sequence[str],
    where: str,
    labels: Sequence[str] = (),
    *,
    series: Mapping[str, str] | None = None,
    rollup: str = "mean",
    window_fn: str = "mean",
    merge_fn: str | None = None,
) -> str:
    """A gauge over time: `value` on raw data, the `rollup` field (mean/min/max) on rollups.

    With `merge_fn`, series that share `labels` (several mounts of one host) become one,
    reduced by `merge_fn` per window: the fullest disk is `merge_fn="max"`.
    """
    _check_kind(measurements, "gauge")
    steps = [
        RANGE,
        measurement_filter(measurements, where),
        "filter(fn: (r) => r._field == gauge_field)",
        f"aggregateWindow(every: v.windowPeriod, fn: {window_fn}, createEmpty: false)",
    ]
    if series:
        steps.append(series_column(series))
        labels = ("series", *labels)
    merge = []
    if merge_fn is not None:
        merge = [
            'sort(columns: ["_time"])',
            f"aggregateWindow(every: v.windowPeriod, fn: {merge_fn}, createEmpty: false)",
        ]
    return (
        tier_preamble(buckets)
        + f'gauge_field = if raw then "{RAW_FIELD}" else "{rollup}"\n\n'
        + pipeline("from(bucket: bucket)", [*steps, *shape(labels), *merge])
    )


def counter_rate(
    buckets: Buckets,
    measurements: Sequence[str],
    where: str,
    labels: Sequence[str] = (),
    *,
    series: Mapping[str, str] | None = None,
    peak: bool = False,
) -> str:
    """Per-second rate of counters: derivative(nonNegative) on raw, rate_mean/rate_max after."""
    _check_kind(measurements, "counter")
    rollup, window_fn = ("rate_max", "max") if peak else ("rate_mean", "mean")
    steps = [
        RANGE,
        measurement_filter(measurements, where),
        "filter(fn: (r) => r._field == rate_field)",
        "per_second()",
        f"aggregateWindow(every: v.windowPeriod, fn: {window_fn}, createEmpty: false)",
    ]
    if series:
        steps.append(series_column(series))
        labels = ("series", *labels)
    return (
        tier_preamble(buckets)
        + f'rate_field = if raw then "{RAW_FIELD}" else "{rollup}"\n'
        + "// Counter resets must never give negative rates.\n"
        + "per_second = (tables=<-) =>\n"
        + "    if raw then tables |> derivative(unit: 1s, nonNegative: true) else tables\n\n"
        + pipeline("from(bucket: bucket)", [*steps, *shape(labels)])
    )


def counter_value(
    buckets: Buckets, measurements: Sequence[str], where: str, labels: Sequence[str] = ()
) -> str:
    """A counter's own value over time (`value` raw, `last` on rollups), e.g. restarts."""
    _check_kind(measurements, "counter")
    steps = [
        RANGE,
        measurement_filter(measurements, where),
        "filter(fn: (r) => r._field == counter_field)",
        "aggregateWindow(every: v.windowPeriod, fn: last, createEmpty: false)",
    ]
    return (
        tier_preamble(buckets)
        + f'counter_field = if raw then "{RAW_FIELD}" else "last"\n\n'
        + pipeline("from(bucket: bucket)", [*steps, *shape(labels)])
    )


def latest_gauge(
    buckets: Buckets,
    measurement: str,
    where: str,
    *,
    group_by: Sequence[str] = (),
    reduce: str = "max",
    then: Sequence[str] = (),
) -> str:
    """The latest value of a gauge in the range, reduced over series per `group_by`."""
    _check_kind([measurement], "gauge")
    group = columns(group_by)
    steps = [
        RANGE,
        measurement_filter([measurement], where),
        "filter(fn: (r) => r._field == gauge_field)",
        "last()",
        f"group(columns: [{group}])",
        f"{reduce}()",
        f"keep(columns: [{columns(('_value', *group_by))}])",
        *then,
    ]
    return (
        tier_preamble(buckets)
        + f'gauge_field = if raw then "{RAW_FIELD}" else "mean"\n\n'
        + pipeline("from(bucket: bucket)", steps)
    )


def tag_values(buckets: Buckets, measurement: str, tag: str, where: str = "") -> str:
    """Values of `tag` seen on `measurement` in the dashboard range (for variables)."""
    predicate = f'r._measurement == "{measurement}"' + (f" and {where}" if where else "")
    return (
        'import "influxdata/influxdb/schema"\n\n'
        + tier_preamble(buckets)
        + "\n"
        + f'schema.tagValues(bucket: bucket, tag: "{tag}", predicate: (r) => {predicate}, '
        + "start: v.timeRangeStart, stop: v.timeRangeStop)\n"
    )
