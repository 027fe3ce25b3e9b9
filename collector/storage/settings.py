"""The `storage:` section of fleetpulse.yaml, owned by the storage adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fleetpulse.core.tiers import DEFAULT_BUCKET
from fleetpulse.core.yamlfile import MapView, resolve_path

STORAGE_BACKENDS = ("sqlite", "influxdb")


@dataclass(frozen=True, slots=True)
class SqliteSettings:
    path: Path | None = None  # None: <data dir>/metrics.db
    # How long scraped samples may wait to be written together (0: at once). It applies only
    # while some target is scraped at least twice in it; see collector.storage.writequeue.
    flush_interval: float = 2.0


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    url: str = "http://localhost:8086"
    org: str = "fleetpulse"
    token: str = field(default="", repr=False)
    bucket: str = DEFAULT_BUCKET  # the raw bucket; rollups go to <bucket>_1h and <bucket>_1d
    timeout: float = 10.0  # seconds, per HTTP request
    batch_size: int = 5000  # lines per write request
    flush_interval: float = 1.0  # seconds a partial batch may wait before it is sent
    max_retries: int = 3  # quick retries of one batch before it goes to the spool
    retry_interval: float = 1.0  # seconds before the first retry; doubles each time
    max_retry_delay: float = 30.0  # seconds; caps the backoff (a server's Retry-After wins)
    spool_dir: Path | None = None  # None: <data dir>/spool
    spool_max_bytes: int = 256 * 1024 * 1024  # on-disk spool bound; the oldest batches go first


@dataclass(frozen=True, slots=True)
class StorageSettings:
    backend: str = "sqlite"
    sqlite: SqliteSettings = SqliteSettings()
    influxdb: InfluxSettings = InfluxSettings()


INFLUX_KEYS = frozenset(
    {
        "url",
        "org",
        "token",
        "token_file",
        "bucket",
        "timeout",
        "batch_size",
        "flush_interval",
        "max_retries",
        "retry_interval",
        "max_retry_delay",
        "spool_dir",
        "spool_max_bytes",
    }
)


def parse_storage(view: MapView, base: Path) -> StorageSettings:
    view.check_keys({"backend", "sqlite", "influxdb"})
    sqlite_view = view.section("sqlite")
    sqlite_view.check_keys({"path", "flush_interval"})
    sqlite_path = sqlite_view.text("path")
    sqlite_flush = sqlite_view.duration("flush_interval", SqliteSettings().flush_interval)
    if sqlite_flush > 60:
        sqlite_view.reader.problem(
            sqlite_view.line_of("flush_interval"),
            sqlite_view.key_path("flush_interval"),
            "expected at most 60s: samples wait this long in memory",
        )
    influx = view.section("influxdb")
    influx.check_keys(INFLUX_KEYS)
    defaults = InfluxSettings()
    spool_dir = influx.text("spool_dir")
    return StorageSettings(
        backend=view.choice("backend", "sqlite", STORAGE_BACKENDS),
        sqlite=SqliteSettings(
            resolve_path(base, sqlite_path) if sqlite_path else None, min(sqlite_flush, 60.0)
        ),
        influxdb=InfluxSettings(
            url=influx.text("url", defaults.url),
            org=influx.text("org", defaults.org),
            token=influx.secret("token"),
            bucket=influx.text("bucket", defaults.bucket),
            timeout=influx.positive_duration("timeout", defaults.timeout),
            batch_size=influx.integer("batch_size", defaults.batch_size, minimum=1),
            flush_interval=influx.positive_duration("flush_interval", defaults.flush_interval),
            max_retries=influx.integer("max_retries", defaults.max_retries, minimum=0),
            retry_interval=influx.positive_duration("retry_interval", defaults.retry_interval),
            max_retry_delay=influx.positive_duration("max_retry_delay", defaults.max_retry_delay),
            spool_dir=resolve_path(base, spool_dir) if spool_dir else None,
            spool_max_bytes=influx.integer(
                "spool_max_bytes", defaults.spool_max_bytes, minimum=1024 * 1024
            ),
        ),
    )
