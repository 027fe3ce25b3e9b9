"""`thresholds.yaml`: warning and critical levels per key, with per-host overrides by glob, and
over the file the per-host overrides set through the API (kept in the store, see
`fleetpulse.core.overrides`)."""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fleetpulse.core.errors import ConfigError
from fleetpulse.core.yamlfile import MapView, Reader, load_yaml

log = logging.getLogger(__name__)
THRESHOLDS_FILE = "thresholds.yaml"
CHECK_EVERY = 1.0  # seconds between looks at the file, as the alert engine looks at its rules
# The threshold keys that rate a host's usage, and the gauge each one rates: the API's usage
# columns, `fleetpulse status` and the dashboards read this map, nothing else spells it out.
THRESHOLD_METRICS = {
    "cpu": "host_cpu_usage_percent",
    "memory": "host_memory_usage_percent",
    "disk": "host_disk_usage_percent",
}
# The series the collector writes every scrape interval for Grafana, which cannot read the
# store's overrides: each host's effective levels (labels host, key, level) and whether they
# differ from the defaults (1 or 0).
THRESHOLD_SERIES = "fleetpulse_threshold"
CUSTOMIZED_SERIES = "fleetpulse_thresholds_customized"


@dataclass(frozen=True, slots=True)
class Level:
    warning: float
    critical: float

    def as_dict(self) -> dict[str, float]:
        return {"warning": self.warning, "critical": self.critical}


HostLevels = tuple[tuple[str, Level], ...]  # (key, level) pairs for one host


@dataclass(frozen=True, slots=True)
class Thresholds:
    defaults: tuple[tuple[str, Level], ...] = ()
    hosts: tuple[tuple[str, HostLevels], ...] = ()  # (glob, overrides)
    source: Path | None = None
    # exact host -> the levels set through the API, applied over the file's; a mapping, as
    # every lookup of a large fleet's alert cycle goes through it
    overrides: Mapping[str, HostLevels] = dataclasses.field(default_factory=dict)

    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.defaults)

    def with_overrides(self, overrides: Mapping[str, HostLevels]) -> Thresholds:
        """These levels with the store's per-host overrides over them (replacing any before)."""
        return dataclasses.replace(self, overrides=dict(overrides))

    def from_file(self, host: str) -> dict[str, Level]:
        """The levels thresholds.yaml gives `host`: what a reset of its overrides returns to."""
        levels = dict(self.defaults)
        for pattern, overrides in self.hosts:
            if fnmatch.fnmatchcase(host, pattern):
                levels.update(overrides)
        return levels

    def overridden(self, host: str) -> tuple[str, ...]:
        """The keys whose level for `host` is set through the API."""
        known = set(self.keys())
        return tuple(key for key, _ in self.overrides.get(host, ()) if key in known)

    def for_host(self, host: str) -> tuple[dict[str, Level], bool]:
        """The effective levels for `host`, and whether any override (the file's host globs or
        the API's) makes them differ from the defaults."""
        levels = self.from_file(host)
        known = set(levels)
        levels.update((key, level) for key, level in self.overrides.get(host, ()) if key in known)
        return levels, levels != dict(self.defaults)


def find_thresholds_file(rule_paths: tuple[Path, ...]) -> Path | None:
    """`thresholds.yaml` inside a rules folder, or beside a rules file; the first one wins."""
    for path in rule_paths:
        candidate = path / THRESHOLDS_FILE if path.is_dir() else path.parent / THRESHOLDS_FILE
        if candidate.is_file():
            return candidate
    return None


def _level(view: MapView, inherited: Level | None) -> Level | None:
    view.check_keys({"warning", "critical"})
    if inherited is None and not ("warning" in view and "critical" in view):
        view.reader.problem(view.line, view.path, "expected both warning and critical")
        return None
    base = inherited or Level(0.0, 0.0)
    return Level(view.number("warning", base.warning), view.number("critical", base.critical))


def load_thresholds(path: Path) -> Thresholds:
    """Raises ConfigError with file:line for every mistake."""
    root = load_yaml(path)
    reader = Reader(str(path))
    top = MapView(reader, root)
    top.check_keys({"thresholds"})
    body = top.section("thresholds")
    body.check_keys({"defaults", "hosts"})
    defaults_view = body.section("defaults")
    defaults: dict[str, Level] = {}
    for key in defaults_view:
        level = _level(defaults_view.section(key), None)
        if level is not None:
            defaults[key] = level
    hosts = []
    hosts_view = body.section("hosts")
    for pattern in hosts_view:
        overrides_view = hosts_view.section(pattern)
        overrides = []
        for key in overrides_view:
            level_view = overrides_view.section(key)
            if key not in defaults:
                reader.problem(
                    level_view.line,
                    level_view.path,
                    f"unknown threshold key; defaults define: {', '.join(defaults)}",
                )
                continue
            level = _level(level_view, defaults[key])
            if level is not None:
                overrides.append((key, level))
        hosts.append((pattern, tuple(overrides)))
    reader.raise_if_problems()
    return Thresholds(tuple(defaults.items()), tuple(hosts), path)


def _signature(path: Path | None) -> tuple[str, int, int] | None:
    """What changes when the file is edited, replaced or removed."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return str(path), stat.st_mtime_ns, stat.st_size


class LiveThresholds:
    """The thresholds.yaml beside the rules, read again whenever it changes: for a process
    without the alert engine (`fleetpulse collector`), whose rule reload does the same.

    Calling it gives the current levels. A broken edit keeps the last good levels and is
    logged once, one line per problem with its file:line; a removed file means no levels,
    as it does at start. The first read raises ConfigError, as a start with a broken file
    must fail.
    """

    def __init__(self, rule_paths: tuple[Path, ...]) -> None:
        self.rule_paths = rule_paths
        path = find_thresholds_file(rule_paths)
        self._seen = _signature(path)
        self.current = load_thresholds(path) if path else Thresholds()

    def __call__(self) -> Thresholds:
        return self.current

    def refresh(self) -> bool:
        """Read the file again if it changed; True when new levels are in use. Blocking file
        I/O: an event loop runs it in a thread (`watch`)."""
        path = find_thresholds_file(self.rule_paths)
        seen = _signature(path)
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            self.current = load_thresholds(path) if path else Thresholds()
        except ConfigError as exc:
            for problem in exc.problems:
                log.error(
                    "thresholds reload refused, keeping the last good ones problem=%s", problem
                )
            return False
        log.info("thresholds reloaded path=%s host_overrides=%d", path, len(self.current.hosts))
        return True

    async def watch(self, every: float = CHECK_EVERY) -> None:
        """Refresh every `every` seconds until cancelled."""
        while True:
            await asyncio.sleep(every)
            await asyncio.to_thread(self.refresh)
