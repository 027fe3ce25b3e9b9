"""The loaded rules as the API shows them: the engine publishes its rule set into the store
as one `alert_events` event (`event="rules"`, the list as a JSON field), so an API in another
process (`fleetpulse collector` beside `fleetpulse alerting`) answers what the engine runs.
"""

from __future__ import annotations

import json
from typing import Any

from alerting.events import EventKind
from alerting.rules import Rule, RuleSet
from alerting.severity import Severity
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import ALERT_EVENTS, Event, Storage
from fleetpulse.core.timeutil import format_time

# Published again this often even without a reload: the store expires old events, and the
# API looks back only a little further than this for the latest set.
PUBLISH_EVERY_MS = 3_600_000
LOOKBACK_MS = 2 * PUBLISH_EVERY_MS + 60_000
# InfluxDB refuses a string field over 64 KiB, about 250 rules of JSON: a longer list goes
# into the fields `rules`, `rules_1`, `rules_2`, … in this many characters each
CHUNK = 60_000


def rule_json(rule: Rule, group: str, default_channels: tuple[str, ...]) -> dict[str, Any]:
    keyed = isinstance(rule.threshold, str)  # a thresholds.yaml key rates warning and critical
    return {
        "alert": rule.alert,
        "group": group,
        "metric": str(rule.selector),
        "reduce": rule.reduce,
        "window": rule.window,
        "op": rule.op,
        "threshold": rule.threshold,
        "severities": [Severity.WARNING, Severity.CRITICAL] if keyed else [rule.severity],
        "for": rule.for_,
        "keep_firing_for": rule.keep_firing_for,
        "cooldown": rule.cooldown,
        "channels": list(default_channels if rule.notify is None else rule.notify),
    }


def rules_event(ruleset: RuleSet, default_channels: tuple[str, ...], ts_ms: int) -> Event:
    rules = [
        rule_json(rule, group.name, default_channels)
        for group in ruleset.groups
        for rule in group.rules
    ]
    text = json.dumps(rules, separators=(",", ":"))
    chunks = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]
    fields = tuple((_chunk_field(n), chunk) for n, chunk in enumerate(chunks))
    return Event(ts_ms, (("event", EventKind.RULES), ("host", "")), fields)


def _chunk_field(n: int) -> str:
    return "rules" if n == 0 else f"rules_{n}"


async def latest_rules(storage: Storage, now_ms: int) -> tuple[str, list[dict[str, Any]]] | None:
    """When the latest rule set was published and its rules; None when no engine published
    one lately (none runs, or it runs against another store)."""
    selector = Selector(ALERT_EVENTS).with_matcher("event", EventKind.RULES)
    events = await storage.query_events(
        ALERT_EVENTS, now_ms - LOOKBACK_MS, now_ms, selector, limit=1_000
    )
    if not events:
        return None
    latest = events[-1]  # oldest first
    names = {key for key, _ in latest.fields}
    n = 0
    text = ""
    while _chunk_field(n) in names:
        text += str(latest.field(_chunk_field(n)))
        n += 1
    rules: list[dict[str, Any]] = json.loads(text or "[]")
    return format_time(latest.ts_ms, millis=True), rules
