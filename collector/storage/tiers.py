"""Retention tiers and the one rule that picks a tier for a range (API, CLI, dashboards)."""

from __future__ import annotations

from dataclasses import dataclass

from collector.storage.settings import RetentionSettings


@dataclass(frozen=True, slots=True)
class Tier:
    name: str  # "raw" | "hourly" | "daily"
    bucket_suffix: str  # InfluxDB bucket = <bucket><suffix>
    resolution_ms: int  # 0 for raw


TIERS = (
    Tier("raw", "", 0),
    Tier("hourly", "_1h", 3_600_000),
    Tier("daily", "_1d", 86_400_000),
)
TIER_BY_NAME = {tier.name: tier for tier in TIERS}


def retention_ms(retention: RetentionSettings, tier: str) -> int:
    seconds = {"raw": retention.raw, "hourly": retention.hourly, "daily": retention.daily}[tier]
    return int(seconds * 1000)


def choose_tier(start_ms: int, now_ms: int, retention: RetentionSettings) -> Tier:
    """Raw if it still holds `start`, else hourly if it does, else daily."""
    for tier in TIERS[:-1]:
        if start_ms >= now_ms - retention_ms(retention, tier.name):
            return tier
    return TIERS[-1]
