"""Alert instances and their state machine (inactive -> pending -> firing -> resolved).

Follows Prometheus: the condition must hold for `for` before firing; `keep_firing_for` keeps a
firing alert up through short dips. The cooldown clock (`last_notified`) deliberately
survives a resolve, so a flapping series notifies at most once per cooldown. The file that
keeps the instances across restarts is `alerting.statefile`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from alerting.severity import Severity
from fleetpulse.core.samples import Labels


class AlertState(StrEnum):
    """The values are what the state file, the history and the API carry."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    # entered, never held: a resolved instance is inactive again at once
    RESOLVED = "resolved"


# Short names for the members: every instance is compared with them every cycle, and a module
# global is read faster than an enum's class attribute.
INACTIVE = AlertState.INACTIVE
PENDING = AlertState.PENDING
FIRING = AlertState.FIRING
RESOLVED = AlertState.RESOLVED

InstanceKey = tuple[str, Severity, Labels]  # (alert, severity, series labels)


# Not frozen: a cycle moves tens of thousands of instances on in place, and a copy of each
# one per cycle would cost more than the rest of the evaluation.
@dataclass(slots=True)
class AlertInstance:
    """One (rule, severity, series): its state and clocks, all in ms since the epoch."""

    alert: str
    severity: Severity
    series_labels: Labels  # identity: (alert, severity, series labels)
    labels: Labels  # what messages and history show: + rule labels, alertname, severity
    state: AlertState = INACTIVE
    pending_since: int | None = None
    firing_since: int | None = None
    last_active: int | None = None
    last_notified: int | None = None  # last firing notification, in any episode
    notified_episode: bool = False  # this firing episode was notified: a resolve is due
    value: float | None = None
    threshold: float = 0.0

    @property
    def key(self) -> InstanceKey:
        return (self.alert, self.severity, self.series_labels)

    def to_json(self) -> dict[str, Any]:
        # by hand, in the fields' order: `asdict` deep-copies every label pair, and the state
        # of 25,000 instances is written every cycle
        return {
            "alert": self.alert,
            "severity": self.severity,
            "series_labels": dict(self.series_labels),
            "labels": dict(self.labels),
            "state": self.state,
            "pending_since": self.pending_since,
            "firing_since": self.firing_since,
            "last_active": self.last_active,
            "last_notified": self.last_notified,
            "notified_episode": self.notified_episode,
            "value": self.value,
            "threshold": self.threshold,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertInstance:
        """Raises ValueError or TypeError on an entry it cannot read."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("labels", "series_labels"):
            values[name] = tuple(sorted(dict(values.get(name, {})).items()))
        values["severity"] = Severity(values.get("severity", ""))
        if "state" in values:
            values["state"] = AlertState(values["state"])
        return cls(**values)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def advance(
    inst: AlertInstance, active: bool | None, now: int, for_ms: int, keep_firing_ms: int
) -> AlertState | None:
    """Move `inst` on by one evaluation; returns the state entered (or RESOLVED), if any.

    `active` None means the series had no data in the window: the instance holds its state,
    because a missing scrape is not evidence that the problem went away (the `up` rule says
    whether the host is down).
    """
    if active is None:
        return None
    if active:
        inst.last_active = now
        if inst.state == INACTIVE:
            inst.state, inst.pending_since = PENDING, now
            if for_ms > 0:
                return PENDING
        if inst.state == PENDING and now - _or(inst.pending_since, now) >= for_ms:
            inst.state, inst.firing_since = FIRING, now
            return FIRING
        return None
    if inst.state == PENDING:
        inst.state, inst.pending_since = INACTIVE, None
        return INACTIVE
    if inst.state == FIRING:
        if keep_firing_ms and now - _or(inst.last_active, now) < keep_firing_ms:
            return None
        inst.state, inst.pending_since = INACTIVE, None
        return RESOLVED
    return None


def cooldown_over(inst: AlertInstance, now: int, cooldown_ms: int) -> bool:
    return inst.last_notified is None or now - inst.last_notified >= cooldown_ms
