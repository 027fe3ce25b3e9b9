"""Storage adapters by backend name; `open_storage` is the one place that picks one."""

from __future__ import annotations

from pathlib import Path

from collector.storage.settings import StorageSettings
from collector.storage.sqlite import SqliteStorage
from fleetpulse.core.durations import format_duration
from fleetpulse.core.storage import StorageBackend, StorageError
from fleetpulse.core.tiers import RetentionSettings


def sqlite_path(storage: StorageSettings, data_dir: Path) -> Path:
    return storage.sqlite.path or data_dir / "metrics.db"


def spool_dir(storage: StorageSettings, data_dir: Path) -> Path:
    return storage.influxdb.spool_dir or data_dir / "spool"


async def open_storage(
    storage: StorageSettings, retention: RetentionSettings, data_dir: Path
) -> StorageBackend:
    backend = storage.backend
    if backend == "sqlite":
        return await SqliteStorage.open(
            sqlite_path(storage, data_dir), retention, flush_interval=storage.sqlite.flush_interval
        )
    if backend == "influxdb":
        from collector.storage.influxdb import InfluxStorage  # loads influxdb-client only here

        return await InfluxStorage.open(storage.influxdb, retention, spool_dir(storage, data_dir))
    raise StorageError(
        f"storage backend {backend!r} is not available in this version yet; "
        "use storage.backend: sqlite"
    )


def describe_storage(storage: StorageSettings, data_dir: Path) -> str:
    if storage.backend == "sqlite":
        return f"sqlite {sqlite_path(storage, data_dir)}"
    return f"influxdb {storage.influxdb.url} bucket={storage.influxdb.bucket}"


def describe_storage_and_retention(
    storage: StorageSettings, retention: RetentionSettings, data_dir: Path
) -> str:
    """The start banner's store line: where, and how long each tier is kept."""
    return (
        f"{describe_storage(storage, data_dir)} (raw {format_duration(retention.raw)}, "
        f"hourly {format_duration(retention.hourly)}, daily {format_duration(retention.daily)})"
    )
