"""`fleetpulse.yaml`: loaded once, validated at the edge, and composed of each service's
settings (each service parses its own sections).

Every mistake is reported as `file:line: key: what was expected`, all at once.
Relative paths resolve against the config file's folder, as Prometheus does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alerting.settings import AlertingSettings, default_rules, parse_alerting
from collector.settings import (
    ApiSettings,
    CollectorSettings,
    ScrapeSettings,
    parse_api,
    parse_scrape,
)
from collector.storage.settings import StorageSettings, parse_storage
from exporter.settings import ExporterSettings, parse_exporter
from fleetpulse.core.tiers import RetentionSettings, parse_retention
from fleetpulse.core.yamlfile import MapView, Node, Reader, load_yaml

DEFAULT_DATA_DIR = Path("fleetpulse-data")


@dataclass(frozen=True, slots=True)
class Config:
    storage: StorageSettings = StorageSettings()
    retention: RetentionSettings = RetentionSettings()
    scrape: ScrapeSettings = ScrapeSettings()
    alerting: AlertingSettings = AlertingSettings()
    api: ApiSettings = ApiSettings()
    exporter: ExporterSettings = ExporterSettings()
    source: Path | None = None  # the file it came from

    @property
    def collector(self) -> CollectorSettings:
        return CollectorSettings(self.scrape, self.api, self.storage, self.retention, self.base)

    @property
    def base(self) -> Path:
        """The folder relative paths resolve against: the config file's (else the working one)."""
        return self.source.resolve().parent if self.source else Path()


TOP_KEYS = frozenset({"storage", "retention", "scrape", "alerting", "api", "exporter"})


def load_config(path: Path | None) -> Config:
    """The config in `path`, or the defaults when `path` is None (then a rules/ folder in the
    working directory stands in for one beside the config file). Raises ConfigError."""
    if path is None:
        return Config(alerting=AlertingSettings(rules=default_rules(Path())))
    root = load_yaml(path)
    reader = Reader(str(path))
    config = config_from_tree(root, reader, base=path.resolve().parent)
    reader.raise_if_problems()
    return Config(
        storage=config.storage,
        retention=config.retention,
        scrape=config.scrape,
        alerting=config.alerting,
        api=config.api,
        exporter=config.exporter,
        source=path,
    )


def config_from_tree(root: Node, reader: Reader, base: Path) -> Config:
    top = MapView(reader, root)
    top.check_keys(TOP_KEYS)
    return Config(
        storage=parse_storage(top.section("storage"), base),
        retention=parse_retention(top.section("retention")),
        scrape=parse_scrape(top.section("scrape"), base),
        alerting=parse_alerting(top.section("alerting"), base),
        api=parse_api(top.section("api")),
        exporter=parse_exporter(top.section("exporter")),
    )
