"""FleetPulse's own metrics as the alert engine reads them: sampled from the process's
registry at each cycle and kept in memory for the rules' windows.

The self-monitoring rules must work on the day the store does not: a full disk stops every
write, the samples about it included. So rules over a metric this process exports are
answered from here (as Prometheus answers rules from its in-memory head), while the same
metrics are also scraped and stored like any target's for history and dashboards.
"""

from __future__ import annotations

from collections import deque

from prometheus_client import CollectorRegistry

from fleetpulse.core.samples import Labels, Series, make_labels
from fleetpulse.core.selector import Selector

# prometheus_client's bookkeeping series: no rule wants them
SKIPPED_SUFFIXES = ("_created", "_bucket")


class LiveMetrics:
    """The last `keep_ms` of every series `registry` exports, labelled like its scrape."""

    def __init__(self, registry: CollectorRegistry, labels: Labels, keep_ms: int) -> None:
        self.registry = registry
        self.labels = labels  # host and job, as the self-scrape stores them
        self.keep_ms = keep_ms
        self._points: dict[str, dict[Labels, deque[tuple[int, float]]]] = {}

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._points)

    def sample(self, now_ms: int) -> None:
        oldest = now_ms - self.keep_ms
        for family in self.registry.collect():
            for one in family.samples:
                if one.name.endswith(SKIPPED_SUFFIXES):
                    continue
                labels = make_labels({**one.labels, **dict(self.labels)})
                points = self._points.setdefault(one.name, {}).setdefault(labels, deque())
                points.append((now_ms, float(one.value)))
        for series in self._points.values():
            for points in series.values():
                while points and points[0][0] < oldest:
                    points.popleft()

    def series(self, selector: Selector, start_ms: int, end_ms: int) -> list[Series]:
        out = []
        for labels, points in self._points.get(selector.metric, {}).items():
            if selector.matches(labels):
                kept = [p for p in points if start_ms <= p[0] <= end_ms]
                if kept:
                    out.append(Series(selector.metric, labels, kept))
        return out
