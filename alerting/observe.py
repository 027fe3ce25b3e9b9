"""What one rule sees in the series its query returned: a reduce per series and a comparison
per alert instance (the reduce functions and operators are the tables of `alerting.reduce`).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass

from alerting.reduce import OPS, REDUCERS
from alerting.rules import Rule
from alerting.severity import Severity
from alerting.state import InstanceKey
from fleetpulse.core.samples import Labels, Series, label_value
from fleetpulse.core.thresholds import Level, Thresholds


@dataclass(frozen=True, slots=True)
class Observation:
    """One alert instance's input at one evaluation: is its condition true right now?"""

    alert: str
    severity: Severity
    series_labels: Labels
    value: float | None  # None: no data in the window (the instance holds its state)
    threshold: float
    active: bool | None  # None when there was no data

    @property
    def key(self) -> InstanceKey:
        return (self.alert, self.severity, self.series_labels)


def instance_labels(rule: Rule, series_labels: Labels, severity: Severity) -> Labels:
    """Series labels + the rule's labels + alertname + severity (built only when needed)."""
    merged = dict(series_labels)
    merged.update(rule.labels)
    merged["alertname"] = rule.alert
    merged["severity"] = severity
    return tuple(sorted(merged.items()))


LevelsByHost = dict[str, dict[str, Level]]


def observe(
    rule: Rule,
    series: Sequence[Series],
    thresholds: Thresholds,
    *,
    tracked: Container[InstanceKey] | None = None,
    levels_by_host: LevelsByHost | None = None,
) -> list[Observation]:
    """Observations for every series the query returned (none for series without points).

    With `tracked`, an observation whose condition is not true is left out unless its
    instance key is in `tracked`: it could change nothing, and building one for each quiet
    series was most of a large cycle's work. `levels_by_host` caches `thresholds.for_host`
    and may be shared across rules and cycles while `thresholds` stays the same."""
    compare = OPS[rule.op]
    reduce = REDUCERS[rule.reduce]
    alert = rule.alert
    out: list[Observation] = []
    if not isinstance(rule.threshold, str):
        severity, limit = rule.severity, rule.threshold
        for one in series:
            value = reduce(one.points)
            active = None if value is None else compare(value, limit)
            if active or tracked is None or (alert, severity, one.labels) in tracked:
                out.append(Observation(alert, severity, one.labels, value, limit, active))
        return out
    name = rule.threshold
    if levels_by_host is None:
        levels_by_host = {}
    warning, critical = Severity.WARNING, Severity.CRITICAL
    for one in series:
        host = label_value(one.labels, "host")
        levels = levels_by_host.get(host)
        if levels is None:
            levels = levels_by_host[host] = thresholds.for_host(host)[0]
        level = levels.get(name)
        if level is None:
            continue
        value = reduce(one.points)
        for severity, limit in ((warning, level.warning), (critical, level.critical)):
            active = None if value is None else compare(value, limit)
            if active or tracked is None or (alert, severity, one.labels) in tracked:
                out.append(Observation(alert, severity, one.labels, value, limit, active))
    return out
