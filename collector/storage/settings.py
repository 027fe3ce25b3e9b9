"""The `storage:` section of fleetpulse.yaml, owned by the storage adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fleetpulse.yamlfile import MapView, resolve_path

STORAGE_BACKENDS = ("sqlite", "influxdb")


@dataclass(frozen=True, slots=True)
class SqliteSettings:
    path: Path | None = None  # None: <data dir>/metrics.db


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    url: str = "http://localhost:8086"
    org: str = "fleetpulse"
    token: str = field(default="", repr=False)
    bucket: str = "fleetpulse"
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class StorageSettings:
    backend: str = "sqlite"
    sqlite: SqliteSettings = SqliteSettings()
    influxdb: InfluxSettings = InfluxSettings()


def parse_storage(view: MapView, base: Path) -> StorageSettings:
    view.check_keys({"backend", "sqlite", "influxdb"})
    sqlite_view = view.section("sqlite")
    sqlite_view.check_keys({"path"})
    sqlite_path = sqlite_view.text("path")
    influx = view.section("influxdb")
    influx.check_keys({"url", "org", "token", "token_file", "bucket", "timeout"})
    defaults = InfluxSettings()
    return StorageSettings(
        backend=view.choice("backend", "sqlite", STORAGE_BACKENDS),
        sqlite=SqliteSettings(resolve_path(base, sqlite_path) if sqlite_path else None),
        influxdb=InfluxSettings(
            url=influx.text("url", defaults.url),
            org=influx.text("org", defaults.org),
            token=influx.secret("token"),
            bucket=influx.text("bucket", defaults.bucket),
            timeout=influx.positive_duration("timeout", defaults.timeout),
        ),
    )


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    raw: float = 48 * 3600.0
    hourly: float = 30 * 86400.0
    daily: float = 730 * 86400.0


def parse_retention(view: MapView) -> RetentionSettings:
    view.check_keys({"raw", "hourly", "daily"})
    defaults = RetentionSettings()
    retention = RetentionSettings(
        raw=view.positive_duration("raw", defaults.raw),
        hourly=view.positive_duration("hourly", defaults.hourly),
        daily=view.positive_duration("daily", defaults.daily),
    )
    if retention.raw < 3600:
        view.reader.problem(
            view.line_of("raw"),
            view.key_path("raw"),
            "expected at least 1h, so the hourly rollup has raw data to read",
        )
    return retention
