"""One rule against the store: one range query, a reduce per series, a comparison per instance
(the reduce functions and operators are the tables of `alerting.reduce`)."""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from alerting.reduce import OPS, REDUCERS
from fleetpulse.core.samples import Labels, Series, label_value
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import RangeQuery, Storage

if TYPE_CHECKING:
    from alerting.rules import Rule
    from fleetpulse.core.thresholds import Level, Thresholds

InstanceKey = tuple[str, str, Labels]  # (alert, severity, series labels)


@dataclass(frozen=True, slots=True)
class Observation:
    """One alert instance's input at one evaluation: is its condition true right now?"""

    alert: str
    severity: str
    series_labels: Labels
    value: float | None  # None: no data in the window (the instance holds its state)
    threshold: float
    active: bool | None  # None when there was no data

    @property
    def key(self) -> InstanceKey:
        return (self.alert, self.severity, self.series_labels)


def instance_labels(rule: Rule, series_labels: Labels, severity: str) -> Labels:
    """Series labels + the rule's labels + alertname + severity (built only when needed)."""
    merged = dict(series_labels)
    merged.update(rule.labels)
    merged["alertname"] = rule.alert
    merged["severity"] = severity
    return tuple(sorted(merged.items()))


LevelsByHost = dict[str, dict[str, "Level"]]


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
    for one in series:
        host = label_value(one.labels, "host")
        levels = levels_by_host.get(host)
        if levels is None:
            levels = levels_by_host[host] = thresholds.for_host(host)[0]
        level = levels.get(name)
        if level is None:
            continue
        value = reduce(one.points)
        for severity, limit in (("warning", level.warning), ("critical", level.critical)):
            active = None if value is None else compare(value, limit)
            if active or tracked is None or (alert, severity, one.labels) in tracked:
                out.append(Observation(alert, severity, one.labels, value, limit, active))
    return out


QueryKey = tuple[str, str | None, float]  # metric, the host an `=` matcher pins, window


def query_key(rule: Rule) -> QueryKey:
    return (rule.selector.metric, rule.selector.equal_value("host"), rule.window)


def plan_queries(rules: Sequence[Rule]) -> dict[QueryKey, Selector]:
    """One selector per (metric, pinned host, window): the matchers every rule there shares.

    Rules over one metric (warning/critical variants, per-role matchers, several reducers)
    then cost one query per cycle; each rule filters the shared series by its own selector.
    A host pin stays part of the key, so a rule for one host never pulls the whole fleet."""
    selectors: dict[QueryKey, list[Selector]] = {}
    for rule in rules:
        selectors.setdefault(query_key(rule), []).append(rule.selector)
    plan = {}
    for key, group in selectors.items():
        common = [m for m in group[0].matchers if all(m in other.matchers for other in group)]
        plan[key] = Selector(key[0], tuple(common))
    return plan


async def evaluate_rule(
    rule: Rule, storage: Storage, thresholds: Thresholds, now_ms: int
) -> list[Observation]:
    """One range query for the rule (never one per series), then the observations."""
    query = RangeQuery(rule.selector, now_ms - int(rule.window * 1000), now_ms)
    result = await storage.query_range(query)
    return observe(rule, result.series, thresholds)
