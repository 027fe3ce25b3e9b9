"""The alert engine service: loads the rules and evaluates them on their interval."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from alerting.rules import RuleRef, load_rules, rule_files
from alerting.settings import AlertingSettings
from collector.storage.port import Storage

log = logging.getLogger(__name__)


@dataclass
class AlertEngine:
    settings: AlertingSettings
    rules: list[RuleRef] = field(default_factory=list)
    files: int = 0
    cycles: int = 0

    def load(self) -> None:
        """Load the rule files; raises ConfigError with file:line on a bad file."""
        self.files = len(rule_files(self.settings.rules))
        self.rules = load_rules(self.settings.rules)
        log.info("rules loaded rules=%d files=%d", len(self.rules), self.files)

    async def run(self, storage: Storage, data_dir: Path) -> None:
        # Evaluation of the loaded rules arrives with the alert engine issue; until then the
        # loop only keeps its schedule so that `fleetpulse up` has every part in place.
        while True:
            await asyncio.sleep(self.settings.interval)
            self.cycles += 1
            log.debug("evaluation cycle cycle=%d rules=%d", self.cycles, len(self.rules))
