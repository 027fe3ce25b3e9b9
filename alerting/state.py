"""Alert instances and their state machine (inactive -> pending -> firing -> resolved), and the
file that keeps their clocks and the undelivered notifications (the outbox) across restarts.

Follows Prometheus: the condition must hold for `for` before firing; `keep_firing_for` keeps a
firing alert up through short dips. The cooldown clock (`last_notified`) deliberately
survives a resolve, so a flapping series notifies at most once per cooldown.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fleetpulse.core.samples import Labels

log = logging.getLogger(__name__)

STATE_FILE = "alert-state.json"
INACTIVE, PENDING, FIRING, RESOLVED = "inactive", "pending", "firing", "resolved"


@dataclass(slots=True)
class AlertInstance:
    """One (rule, severity, series): its state and clocks, all in ms since the epoch."""

    alert: str
    severity: str
    series_labels: Labels  # identity: (alert, severity, series labels)
    labels: Labels  # what messages and history show: + rule labels, alertname, severity
    state: str = INACTIVE
    pending_since: int | None = None
    firing_since: int | None = None
    last_active: int | None = None
    last_notified: int | None = None  # last firing notification, in any episode
    notified_episode: bool = False  # this firing episode was notified: a resolve is due
    value: float | None = None
    threshold: float = 0.0

    @property
    def key(self) -> tuple[str, str, Labels]:
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
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("labels", "series_labels"):
            values[name] = tuple(sorted(dict(values.get(name, {})).items()))
        return cls(**values)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def advance(
    inst: AlertInstance, active: bool | None, now: int, for_ms: int, keep_firing_ms: int
) -> str | None:
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


InstanceKey = tuple[str, str, Labels]


@dataclass(frozen=True, slots=True)
class SavedState:
    instances: dict[InstanceKey, AlertInstance]
    # notifications not yet delivered nor given up, as `Notification.to_json` wrote them
    outbox: list[dict[str, Any]]


def load_saved(data_dir: Path) -> SavedState:
    """The saved instances and outbox; a missing or unreadable file starts afresh (logged)."""
    path = data_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        instances = [AlertInstance.from_json(item) for item in raw.get("instances", [])]
        outbox = [dict(item) for item in raw.get("outbox", [])]
    except FileNotFoundError:
        return SavedState({}, [])
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        log.error("alert state unreadable, starting afresh path=%s error=%s", path, exc)
        return SavedState({}, [])
    log.info("alert state loaded path=%s instances=%d outbox=%d", path, len(instances), len(outbox))
    return SavedState({inst.key: inst for inst in instances}, outbox)


def load_state(data_dir: Path) -> dict[InstanceKey, AlertInstance]:
    """The saved instances only (see `load_saved`)."""
    return load_saved(data_dir).instances


def state_payload(instances: list[AlertInstance], outbox: list[dict[str, Any]]) -> str:
    """The file's text. Built on the event loop, so nothing changes it while it is written."""
    return json.dumps(
        {
            "version": 1,
            "instances": [inst.to_json() for inst in instances],
            "outbox": outbox,
        },
        separators=(",", ":"),
    )


def write_state(data_dir: Path, payload: str) -> None:
    """Write atomically: a crash mid-write leaves the previous file, never half of one.

    The cooldown clocks and the outbox travel in one file, so a restart never sees a
    notification's `last_notified` without the notification itself, or the reverse."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".alert-state.", dir=data_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, data_dir / STATE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_state(
    data_dir: Path,
    instances: list[AlertInstance],
    previous: str | None = None,
    outbox: list[dict[str, Any]] | None = None,
) -> str:
    """Write the state file unless it would equal `previous`; returns what it holds."""
    payload = state_payload(instances, outbox or [])
    if payload != previous:
        write_state(data_dir, payload)
    return payload
