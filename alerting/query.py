"""The queries of one evaluation: one range query per (metric, pinned host, window), shared by
the rules there, each rule keeping the series its own selector matches. A metric this process
exports itself is read from its live window instead of the store (`alerting.live`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from alerting.live import LiveMetrics
from alerting.rules import Rule
from fleetpulse.core.samples import Labels, Series
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import RangeQuery, Storage, StorageError

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


class RuleQueries:
    """Runs the plan of a group's rules against the store, concurrently."""

    def __init__(self) -> None:
        # selector -> series labels -> whether it matches: a series' labels never change
        self._matches: dict[Selector, dict[Labels, bool]] = {}

    def forget(self) -> None:
        """Let the answers of rules that are gone go (after a reload)."""
        self._matches = {}

    async def series(
        self, storage: Storage, rules: Sequence[Rule], now: int, live: LiveMetrics | None = None
    ) -> list[list[Series] | StorageError]:
        """Each rule's series in its window up to `now`, or the StorageError of its query (any
        other error raises). Metrics `live` knows are answered from it."""
        plan = plan_queries(rules)
        own = live.names if live is not None else frozenset()
        queries = {
            key: asyncio.ensure_future(
                storage.query_range(RangeQuery(selector, now - int(key[2] * 1000), now))
            )
            for key, selector in plan.items()
            if key[0] not in own
        }
        if queries:
            await asyncio.wait(queries.values())
        out: list[list[Series] | StorageError] = []
        for rule in rules:
            key = query_key(rule)
            if live is not None and key[0] in own:
                found = live.series(plan[key], now - int(key[2] * 1000), now)
            else:
                error = queries[key].exception()
                if isinstance(error, StorageError):
                    out.append(error)
                    continue
                if error is not None:
                    raise error
                found = queries[key].result().series
            if plan[key] != rule.selector:
                found = self._matching(rule.selector, found)
            out.append(found)
        return out

    def _matching(self, selector: Selector, series: list[Series]) -> list[Series]:
        """The series `selector` matches, remembering each answer: rules that share a query
        would otherwise match every series against their matchers every cycle."""
        known = self._matches.get(selector)
        if known is None or len(known) > 2 * len(series) + 100:
            # series come and go (containers, hosts): start afresh rather than grow forever
            known = self._matches[selector] = {}
        out = []
        for one in series:
            hit = known.get(one.labels)
            if hit is None:
                hit = known[one.labels] = selector.matches(one.labels)
            if hit:
                out.append(one)
        return out
