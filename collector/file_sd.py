"""File-based target discovery: YAML/JSON target lists re-read when they change.

A file holds a list of entries, each either one of our targets (the keys of
`scrape.targets`) or a Prometheus file_sd group (`targets: [host:port, …]` plus `labels`,
where `job`, `host`, `__scheme__` and `__metrics_path__` are honoured). Relative paths in an
entry (`tls.ca_file`, `bearer_token_file`, …) resolve against the main config file's folder,
as every path Prometheus reads from its config does. Files are found by
glob and polled by mtime and size, so adding, changing or removing one needs no restart. A
file with a mistake is reported as `file:line` and its last good targets stay in use.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from collector.settings import TargetSettings, parse_target
from fleetpulse.core.durations import format_duration
from fleetpulse.core.errors import ConfigError, Problem
from fleetpulse.core.yamlfile import Interval, MapView, Reader, load_yaml

log = logging.getLogger(__name__)

PROMETHEUS_GROUP_KEYS = frozenset({"targets", "labels"})


@dataclass(frozen=True, slots=True)
class FileState:
    mtime_ns: int
    size: int


def read_targets_file(path: Path, base: Path, scrape_interval: float) -> list[TargetSettings]:
    """Every target in one file_sd file, its relative paths resolved against `base` (the
    config file's folder); raises ConfigError with every problem it found."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(path), 0, "", f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError:
        raise ConfigError([Problem(str(path), 0, "", "not valid UTF-8")]) from None
    if path.suffix == ".json":
        # JSON is YAML here, except that YAML refuses tabs as indentation; valid JSON has tabs
        # only between tokens (a tab inside a string must be escaped), so spaces are equivalent.
        text = text.replace("\t", " ")
    root = load_yaml(path, text)
    reader = Reader(str(path), base)
    interval = Interval(scrape_interval, f"scrape.interval: {format_duration(scrape_interval)}")
    out: list[TargetSettings] = []
    if root.value is None:
        return out
    if not isinstance(root.value, list):
        reader.problem(root.line, "(top level)", "expected a list of targets")
        reader.raise_if_problems()
    for i, node in enumerate(root.value):
        view = MapView(reader, node, f"[{i}]")
        if "targets" in view:
            out += _prometheus_group(view)
        else:
            target = parse_target(view, interval)
            if target is not None:
                out.append(target)
    reader.raise_if_problems()
    return out


def _prometheus_group(view: MapView) -> list[TargetSettings]:
    view.check_keys(PROMETHEUS_GROUP_KEYS)
    labels = view.text_map("labels")
    scheme = labels.pop("__scheme__", "http")
    metrics_path = labels.pop("__metrics_path__", "/metrics")
    job = labels.pop("job", "fleetpulse")
    host = labels.pop("host", "")
    kept = tuple(sorted((k, v) for k, v in labels.items() if not k.startswith("__")))
    out = []
    for address in view.text_list("targets"):
        url = f"{scheme}://{address}{metrics_path}"
        parts = urlsplit(url)
        try:
            valid = scheme in ("http", "https") and bool(parts.hostname) and parts.port is not None
        except ValueError:
            valid = False
        if not valid:
            view.reader.problem(
                view.line_of("targets"),
                view.key_path("targets"),
                f"expected host:port, got {address!r}",
            )
            continue
        out.append(TargetSettings(url=url, host=host or str(parts.hostname), job=job, labels=kept))
    return out


class FileDiscovery:
    """Targets from the files matching some glob patterns, re-read when a file changes."""

    def __init__(self, patterns: Sequence[str], base: Path, scrape_interval: float) -> None:
        self.patterns = tuple(patterns)
        self.base = base
        self.scrape_interval = scrape_interval
        self._states: dict[Path, FileState] = {}
        self._targets: dict[Path, list[TargetSettings]] = {}

    def targets(self) -> list[TargetSettings]:
        return [t for path in sorted(self._targets) for t in self._targets[path]]

    def files(self) -> list[Path]:
        found: set[Path] = set()
        for pattern in self.patterns:
            found.update(Path(p) for p in glob.glob(pattern) if os.path.isfile(p))
        return sorted(found)

    def poll(self) -> bool:
        """Re-read new and changed files, forget removed ones; True if the targets changed.

        Blocking (file reads): call it from a thread.
        """
        before = self.targets()
        present = self.files()
        for path in set(self._states) - set(present):
            del self._states[path]
            if self._targets.pop(path, None) is not None:
                log.info("file_sd file removed path=%s", path)
        for path in present:
            try:
                stat = path.stat()
            except OSError:
                continue  # removed between glob and stat; the next poll forgets it
            state = FileState(stat.st_mtime_ns, stat.st_size)
            if self._states.get(path) == state:
                continue
            self._states[path] = state
            try:
                targets = read_targets_file(path, self.base, self.scrape_interval)
            except ConfigError as exc:
                kept = len(self._targets.get(path, []))
                for problem in exc.problems:
                    log.warning("file_sd file rejected problem=%s kept_targets=%d", problem, kept)
                continue
            self._targets[path] = targets
            log.info("file_sd file loaded path=%s targets=%d", path, len(targets))
        return self.targets() != before


async def watch_files(
    discovery: FileDiscovery,
    interval: float,
    on_change: Callable[[list[TargetSettings]], None],
) -> None:
    """Poll forever; `on_change` gets the full file_sd target list after every change."""
    while True:
        await asyncio.sleep(interval)
        async with asyncio.timeout(60):
            changed = await asyncio.to_thread(discovery.poll)
        if changed:
            on_change(discovery.targets())
