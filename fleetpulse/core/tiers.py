"""Retention tiers: their periods, what each is rolled up from, and the one rule that picks a
tier for a range (API, CLI, dashboards, storage adapters, rollups)."""

from __future__ import annotations

from dataclasses import dataclass

from fleetpulse.core.yamlfile import MapView

# The raw bucket's default name; the rollup tiers add their suffix (`fleetpulse_1h`).
DEFAULT_BUCKET = "fleetpulse"


HOUR_MS = 3_600_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Tier:
    name: str  # "raw" | "hourly" | "daily"
    bucket_suffix: str  # InfluxDB bucket = <bucket><suffix>
    resolution_ms: int  # the period one rolled-up point covers; 0 for raw
    source: str = ""  # the tier its rollup reads; "" for raw, which is written, not rolled up


TIERS = (
    Tier("raw", "", 0),
    Tier("hourly", "_1h", HOUR_MS, source="raw"),
    # days are rolled up from hours, so a day waits until its last hour is rolled up
    Tier("daily", "_1d", DAY_MS, source="hourly"),
)
TIER_BY_NAME = {tier.name: tier for tier in TIERS}
ROLLUP_TIERS = tuple(tier for tier in TIERS if tier.source)  # in the order they roll up


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How long each tier keeps its points (`retention:` of fleetpulse.yaml), in seconds."""

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


def retention_ms(retention: RetentionSettings, tier: str) -> int:
    seconds = {"raw": retention.raw, "hourly": retention.hourly, "daily": retention.daily}[tier]
    return int(seconds * 1000)


def choose_tier(start_ms: int, now_ms: int, retention: RetentionSettings) -> Tier:
    """Raw if it still holds `start`, else hourly if it does, else daily."""
    for tier in TIERS[:-1]:
        if start_ms >= now_ms - retention_ms(retention, tier.name):
            return tier
    return TIERS[-1]
