"""Alert history events: one per transition of an instance, one per delivery attempt.

Labels (InfluxDB tags) are the instance's labels plus `event` (an `EventKind`) and, for
attempts, `channel`. Built here without I/O; `alerting.history` writes and reads them.
"""

from __future__ import annotations

from enum import StrEnum

from alerting.notification import Outcome
from alerting.state import AlertState
from fleetpulse.core.samples import Labels
from fleetpulse.core.storage import Event


class EventKind(StrEnum):
    """The `event` label's values, as stored and as the API shows them."""

    TRANSITION = "transition"
    NOTIFICATION = "notification"
    RULES = "rules"  # the engine's loaded rule set (alerting.published), not a history entry


def _with(labels: Labels, **extra: str) -> Labels:
    merged = dict(labels)
    merged.update(extra)
    merged.setdefault("host", "")
    return tuple(sorted(merged.items()))


def transition_event(
    labels: Labels,
    ts_ms: int,
    previous: AlertState,
    state: AlertState,
    value: float | None,
    threshold: float,
    summary: str,
    since_ms: int | None,
) -> Event:
    fields: list[tuple[str, str | float]] = [
        ("state", state),
        ("previous", previous),
        ("threshold", threshold),
        ("summary", summary),
    ]
    if value is not None:
        fields.append(("value", value))
    if since_ms is not None:
        fields.append(("since_ms", since_ms))
    return Event(ts_ms, _with(labels, event=EventKind.TRANSITION), tuple(fields))


def notification_event(outcome: Outcome) -> Event:
    note = outcome.notification
    return Event(
        outcome.ts_ms,
        _with(note.labels, event=EventKind.NOTIFICATION, channel=note.channel),
        (
            ("kind", note.kind),
            ("attempt", outcome.attempt),
            ("outcome", outcome.delivery),
            ("error", outcome.error),
            ("title", note.title),
        ),
    )
