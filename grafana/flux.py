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
from fleetpulse.core.thresholds import THRESHOLD_METRICS, Thresholds
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


def glob_regex(pattern: str) -> str:
    """A shell glob (fnmatch, as thresholds.yaml host keys) as an anchored RE2 regex literal."""
    out, i, n = ["/^"], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            # The same bracket rules as fnmatch: "]" right after "[" or "[!" is a member.
            j = i + 1 if i < n and pattern[i] == "!" else i
            j = j + 1 if j < n and pattern[j] == "]" else j
            close = pattern.find("]", j)
            if close < 0:
                out.append("\\[")
            else:
                out.append(_char_class(pattern[i:close]))
                i = close + 1
        else:
            out.append(_literal(ch))
    return "".join(out) + "$/"


def _literal(ch: str) -> str:
    if ch.isalnum() or ch in "_-":
        return ch
    return "\\/" if ch == "/" else "\\" + ch


def _char_class(body: str) -> str:
    negate = body.startswith("!")
    body = body[1:] if negate else body
    items, k = [], 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            low, high = body[k], body[k + 2]
            if low <= high:  # fnmatch drops reversed ranges
                items.append(f"{_class_member(low)}-{_class_member(high)}")
            k += 3
        else:
            items.append(_class_member(body[k]))
            k += 1
    if not items:
        return "." if negate else "[^\\s\\S]"  # matches any one / no character
    return ("[^" if negate else "[") + "".join(items) + "]"


def _class_member(ch: str) -> str:
    return "\\" + ch if ch in "\\[]^-/" else ch


def _float(value: float) -> str:
    return repr(float(value))


def threshold_functions(thresholds: Thresholds) -> str:
    """Flux functions giving each host's effective levels, as `Thresholds.for_host` does.

    For each key: `<key>_warning(host:)` and `<key>_critical(host:)`; the last matching glob
    wins, as in thresholds.yaml. `customized(host:)` is true when a glob changes a level.
    """
    defaults = dict(thresholds.defaults)
    lines = ["// Effective levels per host, generated from rules/thresholds.yaml."]
    for key in THRESHOLD_METRICS:
        if key not in defaults:
            continue
        for which in ("warning", "critical"):
            expr = _float(getattr(defaults[key], which))
            for pattern, overrides in thresholds.hosts:
                for over_key, level in overrides:
                    if over_key == key:
                        expr = f"if host =~ {glob_regex(pattern)} then {_float(getattr(level, which))} else {expr}"
            lines.append(f"{key}_{which} = (host) => {expr}")
    custom = [
        glob_regex(pattern)
        for pattern, overrides in thresholds.hosts
        if any(defaults.get(key) != level for key, level in overrides)
    ]
    matches = " or ".join(f"host =~ {regex}" for regex in custom) or "false"
    lines.append(f"customized = (host) => {matches}")
    lines.append(
        "level = (value, warning, critical) =>\n"
        "    if value > critical then 2 else if value > warning then 1 else 0"
    )
    return "\n".join(lines) + "\n"


def threshold_lines(thresholds: Thresholds, key: str, host: str = "${host}") -> str:
    """Two flat series, `warning` and `critical`, across the range for one host's levels."""
    return (
        'import "array"\n\n'
        + threshold_functions(thresholds)
        + f'warning = {key}_warning(host: "{host}")\n'
        + f'critical = {key}_critical(host: "{host}")\n\n'
        + "array.from(\n"
        + "    rows: [\n"
        + '        {_time: v.timeRangeStart, _value: warning, level: "warning"},\n'
        + '        {_time: v.timeRangeStop, _value: warning, level: "warning"},\n'
        + '        {_time: v.timeRangeStart, _value: critical, level: "critical"},\n'
        + '        {_time: v.timeRangeStop, _value: critical, level: "critical"},\n'
        + "    ],\n"
        + ")\n"
        + '    |> group(columns: ["level"])\n'
    )
