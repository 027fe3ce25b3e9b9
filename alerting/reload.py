"""The rule files as the engine reads them: loading, a reload that keeps the last good rules
on a mistake, and the watcher that notices an edit, an added or a removed file."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from alerting.rules import RuleSet, load_ruleset
from alerting.settings import AlertingSettings
from fleetpulse.core.errors import ConfigError
from fleetpulse.core.thresholds import find_thresholds_file

log = logging.getLogger(__name__)

WATCH_INTERVAL = 1.0  # seconds between checks of the rule files for changes

Signature = tuple[tuple[str, int, int], ...]


def files_signature(paths: tuple[Path, ...]) -> Signature:
    """What changes when a rule or thresholds file is edited, added or removed."""
    out = []
    for path in paths:
        candidates = [path]
        if path.is_dir():
            candidates = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        for candidate in candidates:
            try:
                stat = candidate.stat()
            except OSError:
                continue
            out.append((str(candidate), stat.st_mtime_ns, stat.st_size))
    thresholds = find_thresholds_file(paths)
    if thresholds is not None and not any(p[0] == str(thresholds) for p in out):
        stat = thresholds.stat()
        out.append((str(thresholds), stat.st_mtime_ns, stat.st_size))
    return tuple(out)


class RuleFiles:
    """The configured rule paths, and what they held when last read."""

    def __init__(self, settings: AlertingSettings) -> None:
        self.settings = settings
        self.signature: Signature = ()

    def load(self) -> RuleSet:
        """Rules and thresholds; raises ConfigError with file:line on any mistake."""
        settings = self.settings
        self.signature = files_signature(settings.rules)
        ruleset = load_ruleset(
            settings.rules, settings.channel_names(), settings.interval, settings.rules_source
        )
        log.info("rules loaded rules=%d files=%d", len(ruleset.rules), len(ruleset.files))
        return ruleset

    def reload(self) -> RuleSet | None:
        """Load again; on a mistake log why (one line per problem) and return None, so the
        caller keeps its last good rules."""
        try:
            ruleset = self.load()
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("rules reload refused, keeping the last good rules problem=%s", problem)
            return None
        return ruleset

    async def watch(self, changed: Callable[[], None]) -> None:
        """Call `changed` whenever the files differ from what was last read, until cancelled."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            signature = await asyncio.to_thread(files_signature, self.settings.rules)
            if signature != self.signature:
                self.signature = signature
                log.info("rule files changed, reloading")
                changed()
