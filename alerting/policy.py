"""The notification policy: which notification an instance's evaluation calls for, if any.

- A firing instance notifies when it starts firing, and again (`renotify`) whenever its
  cooldown is over while it still fires. The cooldown clock survives a resolve, so a flapping
  series notifies at most once per cooldown.
- A resolve notifies only an episode that was notified, and only with `send_resolved`.
- A firing critical instance speaks for its series: the warning instance of the same series is
  superseded, stays silent, and its episode counts as not notified.

Decided here, done elsewhere: no I/O, and the time is a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerting.notification import NotificationKind
from alerting.rules import Rule
from alerting.state import FIRING, RESOLVED, AlertInstance, AlertState, cooldown_over


@dataclass(frozen=True, slots=True)
class NotifyPolicy:
    """One rule's policy, with its durations in ms (built once per rule and evaluation)."""

    cooldown_ms: int
    send_resolved: bool

    @classmethod
    def of(cls, rule: Rule) -> NotifyPolicy:
        return cls(int(rule.cooldown * 1000), rule.send_resolved)

    def due(
        self, inst: AlertInstance, entered: AlertState | None, now: int, *, superseded: bool
    ) -> NotificationKind | None:
        """The notification `inst` calls for after this evaluation (`entered` is what
        `state.advance` returned), counting it as sent: the cooldown clock and the episode
        are updated here, before the notification is handed on."""
        if entered == RESOLVED:
            notify = self.send_resolved and inst.notified_episode
            inst.notified_episode = False
            return NotificationKind.RESOLVED if notify else None
        if inst.state != FIRING:
            return None
        if superseded:
            inst.notified_episode = False  # the critical one speaks for this series
            return None
        if not cooldown_over(inst, now, self.cooldown_ms):
            return None
        kind = NotificationKind.RENOTIFY if inst.notified_episode else NotificationKind.FIRING
        inst.last_notified = now
        inst.notified_episode = True
        return kind


def channels(rule: Rule, default_channels: tuple[str, ...]) -> tuple[str, ...]:
    """Where a rule's notifications go: its own `notify`, else `alerting.default_channels`."""
    return rule.notify if rule.notify is not None else default_channels
