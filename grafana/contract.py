"""What the dashboards rely on: the datasource, the buckets per tier, where events are kept.

Metric names come from `fleetpulse.core.catalog`, tiers from `fleetpulse.core.tiers`, retention
and the bucket name from `fleetpulse.core.tiers`, so the dashboards, the API and the
storage adapters cannot drift apart silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleetpulse.core.defaults import BUILTIN_RULES
from fleetpulse.core.thresholds import Level, Thresholds
from fleetpulse.core.tiers import TIER_BY_NAME, TIERS, RetentionSettings, Tier

REPO_ROOT = Path(__file__).resolve().parent.parent
GRAFANA_DIR = REPO_ROOT / "grafana"
# the built-in rules' thresholds: the levels a user's rules/thresholds.yaml starts from
DEFAULT_THRESHOLDS_FILE = BUILTIN_RULES / "thresholds.yaml"

DATASOURCE_UID = "fleetpulse-influxdb"
DATASOURCE_TYPE = "influxdb"
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
DATASOURCE_NAME = "FleetPulse InfluxDB"
# Where the deploy compose file mounts grafana/dashboards inside the Grafana container.
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards/fleetpulse"
FOLDER = "FleetPulse"
FOLDER_UID = "fleetpulse"
INFLUX_URL = "http://influxdb:8086"  # the compose service name of InfluxDB

RAW_FIELD = "value"

# Event measurements. Alert events (alerting/history.py) are kept in the daily bucket, as
# long as alert history should live; exporter logs (collector/logpull.py) in the raw one
# (collector/storage/influxdb.py EVENT_TIER). Tags are the instance's labels plus `event`
# (transition | notification); the state is a field, not a tag.
ALERT_EVENTS_TIER = "daily"
AGENT_LOGS_TIER = "raw"
# How far back "active" looks, as the API (alerting/history.py ACTIVE_LOOKBACK_MS).
ACTIVE_LOOKBACK = "30d"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

DASHBOARD_UIDS = {
    "overview": "fleetpulse-overview",
    "host": "fleetpulse-host",
    "containers": "fleetpulse-containers",
    "alerts": "fleetpulse-alerts",
    "logs": "fleetpulse-logs",
}


@dataclass(frozen=True, slots=True)
class Buckets:
    """InfluxDB bucket per tier and how long each tier keeps data."""

    base: str
    retention: RetentionSettings

    def bucket(self, tier: Tier) -> str:
        return self.base + tier.bucket_suffix

    @property
    def raw(self) -> str:
        return self.bucket(TIERS[0])

    def of_tier(self, name: str) -> str:
        return self.bucket(TIER_BY_NAME[name])

    def tiers(self) -> tuple[tuple[str, float], ...]:
        """(bucket, retention seconds) from the finest tier to the coarsest."""
        seconds = {
            "raw": self.retention.raw,
            "hourly": self.retention.hourly,
            "daily": self.retention.daily,
        }
        return tuple((self.bucket(tier), seconds[tier.name]) for tier in TIERS)


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything a dashboard is generated from besides the catalog."""

    buckets: Buckets
    thresholds: Thresholds

    def level(self, key: str) -> Level | None:
        return dict(self.thresholds.defaults).get(key)
