"""The dashboards and provisioning files, rendered from the catalog, the thresholds and the
site's InfluxDB names (`fleetpulse dashboards` writes or checks them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fleetpulse.core.thresholds import load_thresholds
from fleetpulse.core.tiers import DEFAULT_BUCKET, RetentionSettings
from grafana import alerts, containers, host, logs, overview
from grafana.contract import DEFAULT_THRESHOLDS_FILE, Buckets, Inputs
from grafana.panels import JSON
from grafana.provisioning import dashboards_yaml, datasource_yaml

BUILDERS: dict[str, Callable[[Inputs], JSON]] = {
    "overview": overview.build,
    "host": host.build,
    "containers": containers.build,
    "alerts": alerts.build,
    "logs": logs.build,
}
STALE_HINT = "run fleetpulse dashboards"


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class Site:
    """The names and figures of one installation that the dashboards are drawn for."""

    org: str = "fleetpulse"
    bucket: str = DEFAULT_BUCKET
    retention: RetentionSettings = RetentionSettings()
    scrape_interval: float = 15.0


def render(site: Site = Site(), thresholds_path: Path = DEFAULT_THRESHOLDS_FILE) -> dict[str, str]:
    """Every generated file's text, keyed by its path under grafana/. Raises ConfigError for
    a thresholds file with mistakes."""
    inputs = Inputs(Buckets(site.bucket, site.retention), load_thresholds(thresholds_path))
    files = {
        f"dashboards/{name}.json": json.dumps(build(inputs), indent=2, ensure_ascii=False) + "\n"
        for name, build in BUILDERS.items()
    }
    files["provisioning/datasources/fleetpulse.yaml"] = datasource_yaml(
        org=site.org,
        bucket=site.bucket,
        scrape_interval=_duration(site.scrape_interval),
    )
    files["provisioning/dashboards/fleetpulse.yaml"] = dashboards_yaml()
    return files


def stale_files(files: dict[str, str], out: Path) -> list[str]:
    stale = []
    for name, text in files.items():
        path = out / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def write_files(files: dict[str, str], out: Path) -> list[Path]:
    written = []
    for name, text in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
