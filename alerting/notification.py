"""A notification (one message for one channel) and the outcome of one attempt to deliver it.

The evaluator decides notifications, the notifier (`alerting.notify`) delivers them, and the
outbox keeps each one by `id`, in the form `to_json` gives, until its final outcome.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from fleetpulse.core.samples import Labels


class NotificationKind(StrEnum):
    """The values are what the outbox, the history and the API carry."""

    FIRING = "firing"
    RENOTIFY = "renotify"  # still firing once the cooldown is over
    RESOLVED = "resolved"
    TEST = "test"  # `fleetpulse notify test`
    HEARTBEAT = "heartbeat"  # "FleetPulse is alive" (alerting.heartbeat)


class Delivery(StrEnum):
    """What became of one attempt, as the history records it."""

    SENT = "sent"
    RETRYING = "retrying"  # refused; another attempt follows
    FAILED = "failed"  # refused, and no attempt follows


@dataclass(frozen=True, slots=True)
class Notification:
    channel: str
    title: str
    body: str
    kind: NotificationKind
    labels: Labels  # the instance's labels, for the history
    created_ms: int
    # names the notification in the engine's outbox until its final outcome
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = dict(self.labels)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Notification:
        """Raises KeyError, TypeError or ValueError on an entry it cannot read."""
        return cls(
            channel=str(data["channel"]),
            title=str(data["title"]),
            body=str(data["body"]),
            kind=NotificationKind(str(data["kind"])),
            labels=tuple(sorted((str(k), str(v)) for k, v in dict(data["labels"]).items())),
            created_ms=int(data["created_ms"]),
            id=str(data["id"]),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    notification: Notification
    attempt: int  # 1-based
    ok: bool
    error: str
    ts_ms: int
    final: bool  # no further attempt follows

    @property
    def delivery(self) -> Delivery:
        if self.ok:
            return Delivery.SENT
        return Delivery.FAILED if self.final else Delivery.RETRYING
