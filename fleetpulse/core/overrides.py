"""Per-host threshold overrides set through the API, kept in the store so that every process
reading it (the API, the alert engine of a split deployment, the collector publishing the
levels for Grafana) sees the same ones.

Each change is an event in `THRESHOLD_OVERRIDES` labelled with the host; its fields are the
host's whole set of levels (`cpu.warning`, `cpu.critical`, ...), and the latest event of a
host wins. A reset is an event with no levels, so history stays append-only and a replay
cannot bring an old level back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fleetpulse.core.errors import FleetPulseError
from fleetpulse.core.samples import make_labels
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import THRESHOLD_OVERRIDES, Event, Storage
from fleetpulse.core.thresholds import HostLevels, Level

LEVEL_NAMES = ("warning", "critical")
# every field of an override event, so that a reset (no levels) still has one: InfluxDB
# stores no point without a field
ACTION_FIELD = "action"
READ_LIMIT = 1_000_000  # events read at once: every change ever made, as retention allows
# An override older than this is written again (by the collector), so the store's event
# retention (the daily tier's, two years by default) never expires one still in force.
REFRESH_AFTER_MS = 7 * 86_400_000


class InvalidOverride(FleetPulseError):
    """A refused override; `field` names what was wrong (`disk.warning`), as the API says."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class StoredOverride:
    host: str
    ts_ms: int
    levels: HostLevels  # empty: reset to thresholds.yaml


def override_event(host: str, levels: HostLevels, ts_ms: int) -> Event:
    fields: list[tuple[str, str | float]] = [(ACTION_FIELD, "set" if levels else "reset")]
    for key, level in levels:
        fields += [(f"{key}.warning", level.warning), (f"{key}.critical", level.critical)]
    return Event(ts_ms, make_labels({"host": host}), tuple(fields))


def _levels(event: Event) -> HostLevels:
    if event.field(ACTION_FIELD) != "set":
        return ()
    values: dict[str, dict[str, float]] = {}
    for name, value in event.fields:
        key, _, level = name.rpartition(".")
        if key and level in LEVEL_NAMES and isinstance(value, (int, float)):
            values.setdefault(key, {})[level] = float(value)
    return tuple(
        (key, Level(pair["warning"], pair["critical"]))
        for key, pair in sorted(values.items())
        if len(pair) == len(LEVEL_NAMES)
    )


def latest_overrides(events: Iterable[Event]) -> dict[str, StoredOverride]:
    """The latest override of each host in `events` (oldest first), resets included."""
    latest: dict[str, StoredOverride] = {}
    for event in events:
        host = next((value for name, value in event.labels if name == "host"), "")
        if host and (host not in latest or event.ts_ms >= latest[host].ts_ms):
            latest[host] = StoredOverride(host, event.ts_ms, _levels(event))
    return latest


def in_force(stored: Mapping[str, StoredOverride]) -> dict[str, HostLevels]:
    """What `Thresholds.with_overrides` takes: the hosts whose latest override sets levels."""
    return {host: s.levels for host, s in stored.items() if s.levels}


async def read_overrides(
    storage: Storage, now_ms: int, host: str | None = None
) -> dict[str, StoredOverride]:
    """The latest override of every host (or of `host`): one event query."""
    selector = Selector(THRESHOLD_OVERRIDES).with_matcher("host", host) if host else None
    events = await storage.query_events(THRESHOLD_OVERRIDES, 0, now_ms, selector, READ_LIMIT)
    return latest_overrides(events)


def _number(value: object, field: str) -> float:
    # a JSON true is an int to Python, and not a level
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOverride("must be a number", field)
    if not 0 <= value <= 100:
        raise InvalidOverride("must be between 0 and 100", field)
    return float(value)


def parse_override(body: object, keys: Sequence[str]) -> HostLevels:
    """The levels of a PUT body `{"cpu": {"warning": 60, "critical": 80}, ...}`; raises
    InvalidOverride naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise InvalidOverride(f"expected an object of {', '.join(keys)}", "")
    levels = []
    for key, value in body.items():
        if key not in keys:
            raise InvalidOverride(f"unknown threshold key; known: {', '.join(keys)}", str(key))
        if not isinstance(value, dict) or set(value) != set(LEVEL_NAMES):
            raise InvalidOverride("expected an object with warning and critical", key)
        warning = _number(value["warning"], f"{key}.warning")
        critical = _number(value["critical"], f"{key}.critical")
        if warning >= critical:
            raise InvalidOverride("must be below critical", f"{key}.warning")
        levels.append((key, Level(warning, critical)))
    return tuple(sorted(levels))
