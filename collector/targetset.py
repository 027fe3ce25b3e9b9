"""The targets one collector scrapes: static ones plus file_sd ones, cut down to its shard."""

from __future__ import annotations

from collections.abc import Sequence

from collector.settings import ScrapeSettings, TargetSettings
from collector.targets import Target, in_shard, resolve_target


class TargetSet:
    """Static targets plus the file_sd ones, resolved and cut down to this collector's shard."""

    def __init__(
        self,
        scrape: ScrapeSettings,
        static: Sequence[TargetSettings],
        shard: tuple[int, int] | None,
    ) -> None:
        self.scrape = scrape
        self.static = list(static)
        self.discovered: list[TargetSettings] = []
        self.shard = shard

    def resolve(self) -> list[Target]:
        by_key = {}
        for settings in (*self.static, *self.discovered):
            target = resolve_target(settings, self.scrape)
            by_key[target.key] = target
        return in_shard(list(by_key.values()), self.shard)
