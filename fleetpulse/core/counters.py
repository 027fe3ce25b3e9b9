"""The reset-safe increase of a counter, for rules (`rate`, `increase`) and storage adapters.

A counter that went down was reset (its process restarted from zero), so the new value is
what it counted since: an increase is never negative. The rollups say the same in their own
languages: the SQLite adapter's rollup statements and the Flux tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter

Points = Sequence[tuple[int, float]]  # (ts ms, value), oldest first

_VALUE = itemgetter(1)


def increases(values: Iterable[float]) -> Iterator[float]:
    """The increase from each value to the next: the rule, written once."""
    it = iter(values)
    for previous in it:  # the first value; the loop below takes the rest
        for value in it:
            yield value if value < previous else value - previous
            previous = value


def increase(points: Points) -> float | None:
    """The total increase over the points; None for fewer than two."""
    if len(points) < 2:
        return None
    return sum(increases(map(_VALUE, points)))


def rate(points: Points) -> float | None:
    """The per-second increase between the first and the last point; None without a span."""
    total = increase(points)
    span = (points[-1][0] - points[0][0]) / 1000 if len(points) >= 2 else 0.0
    if total is None or span <= 0:
        return None
    return total / span


def intervals(
    points: Points, before: tuple[int, float] | None = None
) -> list[tuple[int, float, int]]:
    """(ts, increase, elapsed ms) of each interval between consecutive points, the first one
    starting at `before` when given."""
    if before is not None:
        points = [before, *points]
    return [
        (ts, inc, ts - prev_ts)
        for (prev_ts, _), (ts, _), inc in zip(
            points, points[1:], increases(map(_VALUE, points)), strict=False
        )
    ]
