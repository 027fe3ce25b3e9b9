"""Alert history in storage: every transition and every notification attempt.

Events (built by `alerting.events`) go to the `alert_events` measurement through the storage
port, so the API, Grafana annotations and other processes read the same history.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from alerting.events import EventKind
from alerting.severity import Severity
from alerting.state import FIRING, PENDING
from fleetpulse.core.failurelog import RepeatedFailure
from fleetpulse.core.samples import Labels, label_value
from fleetpulse.core.selector import Selector, make_matcher
from fleetpulse.core.storage import ALERT_EVENTS, Event, Storage, StorageError
from fleetpulse.core.timeutil import format_time

log = logging.getLogger(__name__)

ACTIVE_LOOKBACK_MS = 30 * 86_400_000  # how far back /api/v1/alerts looks for open alerts
# Whole-number fields. InfluxDB keeps every numeric event field a float (a bucket's field
# type cannot change once written) and SQLite rows written before kept floats too, so the
# API turns these back into integers rather than trusting the store.
INTEGER_FIELDS = ("attempt",)


# one process writes the history, whichever engine or route calls this
_not_written = RepeatedFailure(log, "alert events not written", "events")


async def write_events(storage: Storage, events: list[Event]) -> None:
    """Write, and on a store outage log and go on: evaluation must not stop for history."""
    if not events:
        return
    try:
        await storage.write_events(ALERT_EVENTS, events)
    except StorageError as exc:
        _not_written.failed(len(events), str(exc))
    else:
        _not_written.succeeded()


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    event: Event

    def as_json(self) -> dict[str, Any]:
        labels = dict(self.event.labels)
        out: dict[str, Any] = {
            "time": format_time(self.event.ts_ms, millis=True),
            "ts_ms": self.event.ts_ms,
            "event": labels.pop("event", ""),
            "alertname": labels.get("alertname", ""),
            "severity": labels.get("severity", ""),
            "host": labels.get("host", ""),
            "labels": labels,
        }
        if "channel" in labels:
            out["channel"] = labels.pop("channel")
        for key, value in self.event.fields:
            whole = key in INTEGER_FIELDS or key.endswith("_ms")
            out[key] = int(value) if whole and isinstance(value, float) else value
        return out


async def query_history(
    storage: Storage, start_ms: int, end_ms: int, host: str | None = None, limit: int = 10_000
) -> list[dict[str, Any]]:
    # the published rule sets (alerting.published) share the measurement, not the history
    selector = Selector(ALERT_EVENTS, (make_matcher("event", "!=", EventKind.RULES),))
    if host:
        selector = selector.with_matcher("host", host)
    events = await storage.query_events(ALERT_EVENTS, start_ms, end_ms, selector, limit)
    return [HistoryEntry(e).as_json() for e in events]


def _instance_identity(labels: Labels) -> str:
    return json.dumps([pair for pair in labels if pair[0] != "event"])


async def active_alerts(storage: Storage, now_ms: int) -> list[dict[str, Any]]:
    """Instances whose latest transition left them pending or firing, newest first."""
    selector = Selector(ALERT_EVENTS).with_matcher("event", EventKind.TRANSITION)
    events = await storage.query_events(
        ALERT_EVENTS, now_ms - ACTIVE_LOOKBACK_MS, now_ms, selector, limit=1_000_000
    )
    latest: dict[str, Event] = {}
    for event in events:  # oldest first: the last one per instance wins
        latest[_instance_identity(event.labels)] = event
    active = []
    for event in latest.values():
        state = str(event.field("state"))
        if state not in (PENDING, FIRING):
            continue
        entry = HistoryEntry(event).as_json()
        since = event.field("since_ms", float(event.ts_ms))
        entry["active_since"] = format_time(int(float(since)))
        entry.pop("event", None)
        entry["host"] = label_value(event.labels, "host")
        active.append(entry)
    active.sort(key=lambda e: (e["severity"] != Severity.CRITICAL, -int(e["ts_ms"])))
    return active
