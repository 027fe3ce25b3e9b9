"""Storage adapters by backend name; `open_storage` is the one place that picks one."""

from __future__ import annotations

from pathlib import Path

from collector.storage.port import Storage, StorageError
from collector.storage.sqlite import SqliteStorage
from fleetpulse.config import Config
from fleetpulse.durations import format_duration


def sqlite_path(config: Config, data_dir: Path) -> Path:
    return config.storage.sqlite.path or data_dir / "metrics.db"


def spool_dir(config: Config, data_dir: Path) -> Path:
    return config.storage.influxdb.spool_dir or data_dir / "spool"


async def open_storage(config: Config, data_dir: Path) -> Storage:
    backend = config.storage.backend
    if backend == "sqlite":
        return await SqliteStorage.open(sqlite_path(config, data_dir), config.retention)
    if backend == "influxdb":
        from collector.storage.influxdb import InfluxStorage  # loads influxdb-client only here

        return await InfluxStorage.open(
            config.storage.influxdb, config.retention, spool_dir(config, data_dir)
        )
    raise StorageError(
        f"storage backend {backend!r} is not available in this version yet; "
        "use storage.backend: sqlite"
    )


def describe_storage(config: Config, data_dir: Path) -> str:
    if config.storage.backend == "sqlite":
        return f"sqlite {sqlite_path(config, data_dir)}"
    return f"influxdb {config.storage.influxdb.url} bucket={config.storage.influxdb.bucket}"


def describe_storage_and_retention(config: Config, data_dir: Path) -> str:
    """The start banner's store line: where, and how long each tier is kept."""
    retention = config.retention
    return (
        f"{describe_storage(config, data_dir)} (raw {format_duration(retention.raw)}, "
        f"hourly {format_duration(retention.hourly)}, daily {format_duration(retention.daily)})"
    )
