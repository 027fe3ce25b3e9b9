"""When each rule group is due: on a grid of its own interval from the moment it is first
seen; a slow cycle skips the ticks it missed rather than running them in a burst."""

from __future__ import annotations

from collections.abc import Sequence

from alerting.rules import Group


class Schedule:
    """The due times (event loop clock, seconds) of the groups; no I/O, the time is passed."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}

    def ready(self, groups: Sequence[Group], now: float) -> list[Group]:
        """The groups due at `now`; a group not seen before is due at once, and the due times
        of groups no longer in `groups` are forgotten."""
        # by name, which the rule loader keeps unique
        current = {group.name: group for group in groups}
        self._due = {name: self._due.get(name, now) for name in current}
        return [group for name, group in current.items() if self._due[name] <= now]

    def ran(self, groups: Sequence[Group], now: float) -> None:
        """`groups` were evaluated; `now` is when that ended."""
        for group in groups:
            nxt = self._due[group.name] + group.interval
            self._due[group.name] = nxt if nxt > now else now + group.interval

    def next_due(self, default: float) -> float:
        """When the next group is due; `default` when there is none."""
        return min(self._due.values(), default=default)
