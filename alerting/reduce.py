"""Reduce functions and comparison operators of rules, as tables (name -> function).

`rate` and `increase` are computed from the window's raw points and are reset-safe: a drop in
a counter is a restart, so the new value counts as the increase since it, never a negative one
(`fleetpulse/core/counters.py`, which the storage adapters use too).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

from fleetpulse.core.counters import increase, rate

Points = Sequence[tuple[int, float]]

# map(_VALUE, points) rather than a generator: the same values in the same order (so the same
# sums), at a fraction of the cost when a cycle reduces 100,000 series
_VALUE = operator.itemgetter(1)


def _slope(points: Points) -> tuple[float, float] | None:
    """Least-squares (per-second slope, value at the last point), as Prometheus `deriv`."""
    if len(points) < 2:
        return None
    t0 = points[-1][0]
    xs = [(t - t0) / 1000 for t, _ in points]
    ys = [v for _, v in points]
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var
    return slope, mean_y - slope * mean_x


def _deriv(points: Points) -> float | None:
    fit = _slope(points)
    return None if fit is None else fit[0]


# A day-ahead forecast from a few minutes of samples is noise (a log rotation, a download), so
# the window's points must span at least this long before the trend counts.
MIN_FORECAST_SPAN_MS = 3_600_000


def _predict_24h(points: Points) -> float | None:
    """The value expected 24 hours after the last point if the window's trend holds."""
    if len(points) < 2 or points[-1][0] - points[0][0] < MIN_FORECAST_SPAN_MS:
        return None
    fit = _slope(points)
    return None if fit is None else fit[1] + fit[0] * 86_400


REDUCERS: dict[str, Callable[[Points], float | None]] = {
    "avg": lambda p: sum(map(_VALUE, p)) / len(p) if p else None,
    "min": lambda p: min(map(_VALUE, p)) if p else None,
    "max": lambda p: max(map(_VALUE, p)) if p else None,
    "last": lambda p: p[-1][1] if p else None,
    "sum": lambda p: sum(map(_VALUE, p)) if p else None,
    "count": lambda p: float(len(p)) if p else None,
    "rate": rate,
    "increase": increase,
    # gauges: change over the window, per-second trend, and a linear forecast
    "delta": lambda p: p[-1][1] - p[0][1] if len(p) >= 2 else None,
    "deriv": _deriv,
    "predict_24h": _predict_24h,
}

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
