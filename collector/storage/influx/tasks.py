"""The Flux downsampling tasks: raw → hourly (`<bucket>_1h`) → daily (`<bucket>_1d`).

Rollup points are keyed by their window's start, so writing a window twice overwrites the
same points. That lets each run read from its last successful run (and never less than two
windows back): late points within the `offset` are in the first run, later ones in the next,
and after downtime the first run catches up on every missed window. Fields follow the storage
contract: gauges `mean`, `min`, `max`, `count`; counters (`*_total`) `last`, `rate_mean`,
`rate_max` (per second, non-negative across counter resets). All fields are floats.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.storage.influx.flux import flux_string
from fleetpulse.core.storage import EVENT_MEASUREMENTS
from fleetpulse.core.tiers import TIER_BY_NAME

HOURLY_OFFSET = "5m"  # late points up to 5 minutes after the hour are in the first run
DAILY_OFFSET = "20m"  # after the hourly task's run for the day's last hour has finished


@dataclass(frozen=True, slots=True)
class TaskSpec:
    name: str
    every: str
    offset: str
    flux: str


def bucket_of(bucket: str, tier: str) -> str:
    return bucket + TIER_BY_NAME[tier].bucket_suffix


def task_name(bucket: str, tier: str) -> str:
    return f"{bucket}_rollup{TIER_BY_NAME[tier].bucket_suffix}"


def _header(name: str, every: str, offset: str, source: str, target: str, lookback: str) -> str:
    return f"""// Managed by `fleetpulse influx setup`: edits are overwritten on its next run.
// Rolls {source} up into {target}.
// Each run reads from its last successful run (at least two windows back), so late points
// and windows missed during downtime are rolled up; points keyed by the window start make
// rewriting a window harmless.
import "date"
import "influxdata/influxdb/tasks"

option task = {{name: {flux_string(name)}, every: {every}, offset: {offset}}}

stop = date.truncate(t: now(), unit: {every})
lookback = date.sub(from: stop, d: {lookback})
lastRun = date.truncate(t: tasks.lastSuccess(orTime: lookback), unit: {every})
start = if lastRun < lookback then lastRun else lookback
"""


def _window(every: str, fn: str) -> str:
    return f'aggregateWindow(every: {every}, fn: {fn}, createEmpty: false, timeSrc: "_start")'


def hourly_task(bucket: str) -> TaskSpec:
    name, every = task_name(bucket, "hourly"), "1h"
    source, target = flux_string(bucket), flux_string(bucket_of(bucket, "hourly"))
    skip_events = " and ".join(f"r._measurement != {flux_string(m)}" for m in EVENT_MEASUREMENTS)
    window = _window(every, "{fn}")
    flux = (
        _header(name, every, HOURLY_OFFSET, bucket, bucket_of(bucket, "hourly"), "2h")
        + f"""
gauges = from(bucket: {source})
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._field == "value" and r._measurement !~ /_total$/ and {skip_events})

gauges |> {window.format(fn="mean")} |> set(key: "_field", value: "mean") |> to(bucket: {target})
gauges |> {window.format(fn="min")} |> set(key: "_field", value: "min") |> to(bucket: {target})
gauges |> {window.format(fn="max")} |> set(key: "_field", value: "max") |> to(bucket: {target})
gauges
    |> {window.format(fn="count")}
    |> toFloat()
    |> set(key: "_field", value: "count")
    |> to(bucket: {target})

// One window more, so the first rate of a window has the point before it.
counters = from(bucket: {source})
    |> range(start: date.sub(from: start, d: {every}), stop: stop)
    |> filter(fn: (r) => r._field == "value" and r._measurement =~ /_total$/)

counters
    |> filter(fn: (r) => r._time >= start)
    |> {window.format(fn="last")}
    |> set(key: "_field", value: "last")
    |> to(bucket: {target})

// After a reset the counter restarted from zero: its rate is value / interval, never negative.
rates = counters
    |> derivative(unit: 1s, nonNegative: true, initialZero: true)
    |> filter(fn: (r) => r._time >= start)

rates |> {window.format(fn="mean")} |> set(key: "_field", value: "rate_mean") |> to(bucket: {target})
rates |> {window.format(fn="max")} |> set(key: "_field", value: "rate_max") |> to(bucket: {target})
// The number of rate intervals: the weight of rate_mean in the daily rollup.
rates
    |> {window.format(fn="count")}
    |> toFloat()
    |> set(key: "_field", value: "count")
    |> to(bucket: {target})
"""
    )
    return TaskSpec(name, every, HOURLY_OFFSET, flux)


def daily_task(bucket: str) -> TaskSpec:
    """Daily points from the hourly ones, which live long enough (30 d) to catch up from."""
    name, every = task_name(bucket, "daily"), "1d"
    source, target = (
        flux_string(bucket_of(bucket, "hourly")),
        flux_string(bucket_of(bucket, "daily")),
    )
    window = _window(every, "{fn}")

    def field(src: str, fn: str, dst: str) -> str:
        return (
            f'hourly |> filter(fn: (r) => r._field == "{src}") |> {window.format(fn=fn)}'
            f' |> set(key: "_field", value: "{dst}") |> to(bucket: {target})'
        )

    def weighted(src: str, counters: str) -> str:
        """The daily `src` (a mean), weighing each hour by its count."""
        return f"""// The daily {src} weighs each hour by its count.
hourly
    |> filter(fn: (r) => r._measurement {counters} /_total$/)
    |> filter(fn: (r) => r._field == "{src}" or r._field == "count")
    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
    |> filter(fn: (r) => exists r.{src} and exists r.count)
    |> window(every: {every})
    |> reduce(
        identity: {{total: 0.0, n: 0.0}},
        fn: (r, accumulator) =>
            ({{total: accumulator.total + r.{src} * r.count, n: accumulator.n + r.count}}),
    )
    |> filter(fn: (r) => r.n > 0.0)
    |> map(fn: (r) => ({{r with _time: r._start, _value: r.total / r.n, _field: "{src}"}}))
    |> drop(columns: ["total", "n"])
    |> to(bucket: {target})"""

    flux = (
        _header(
            name, every, DAILY_OFFSET, bucket_of(bucket, "hourly"), bucket_of(bucket, "daily"), "2d"
        )
        + f"""
hourly = from(bucket: {source})
    |> range(start: start, stop: stop)

{field("min", "min", "min")}
{field("max", "max", "max")}
{field("count", "sum", "count")}
{field("last", "last", "last")}
{field("rate_max", "max", "rate_max")}
{weighted("mean", "!~")}
{weighted("rate_mean", "=~")}
"""
    )
    return TaskSpec(name, every, DAILY_OFFSET, flux)


def rollup_tasks(bucket: str) -> tuple[TaskSpec, ...]:
    return (hourly_task(bucket), daily_task(bucket))
