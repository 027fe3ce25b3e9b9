"""The outbox: the notifications handed to the notifier that have no final outcome yet.

It is saved in the state file with the cooldown clocks, before anything is sent, so after a
crash the restarted engine sends what is still in it (at least once), and nothing that the
cooldown already covered twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from alerting.events import notification_event
from alerting.notification import Notification, Outcome
from alerting.notify import Notifier
from fleetpulse.core.storage import Event

log = logging.getLogger(__name__)


class Outbox:
    def __init__(self) -> None:
        self._notes: dict[str, Notification] = {}

    def add(self, notes: Sequence[Notification]) -> None:
        for note in notes:
            self._notes[note.id] = note

    def settle(self, note: Notification) -> None:
        """Forget `note`: it has its final outcome."""
        self._notes.pop(note.id, None)

    def to_json(self) -> list[dict[str, Any]]:
        return [note.to_json() for note in self._notes.values()]

    def submit(self, notifier: Notifier, notes: Sequence[Notification], now: int) -> list[Event]:
        """Hand `notes` (added before) to their channels; those a full queue refuses (a
        channel dead for long) leave the outbox, and their loss is what this returns."""
        lost = []
        for note in notes:
            if not notifier.submit(note):
                lost.append(notification_event(self._drop(note, "queue full, dropped", now)))
        return lost

    def resubmit(
        self, notifier: Notifier, saved: list[dict[str, Any]], clock: Callable[[], int]
    ) -> list[Event]:
        """Hand the notifications a previous run left undelivered (`saved`, as `to_json` gave
        them) to their channels again, oldest first; returns the loss of those it cannot."""
        notes: list[Notification] = []
        for entry in saved:
            try:
                notes.append(Notification.from_json(entry))
            except (KeyError, TypeError, ValueError) as exc:
                log.error("outbox entry unreadable, dropped error=%s", exc)
        lost: list[Event] = []
        for note in sorted(notes, key=lambda n: n.created_ms):
            self._notes[note.id] = note
            if note.channel not in notifier.workers:
                reason = "channel no longer configured, dropped"
            elif not notifier.submit(note):
                reason = "queue full, dropped"
            else:
                log.info(
                    "notification resubmitted after a restart channel=%s kind=%s",
                    note.channel,
                    note.kind,
                )
                continue
            log.warning(
                "notification from the outbox not sent channel=%s kind=%s reason=%s",
                note.channel,
                note.kind,
                reason,
            )
            lost.append(notification_event(self._drop(note, reason, clock())))
        return lost

    def _drop(self, note: Notification, reason: str, now: int) -> Outcome:
        del self._notes[note.id]
        return Outcome(note, 0, False, reason, now, True)
