"""The `alerting:` section of fleetpulse.yaml, owned by the alert engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fleetpulse.yamlfile import MapView, resolve_path


@dataclass(frozen=True, slots=True)
class AlertingSettings:
    rules: tuple[Path, ...] = (Path("rules"),)
    interval: float = 15.0
    channels: tuple[tuple[str, tuple[str, ...]], ...] = field(default=(), repr=False)
    default_channels: tuple[str, ...] = ()
    grafana_url: str = ""


def parse_alerting(view: MapView, base: Path) -> AlertingSettings:
    view.check_keys({"rules", "interval", "channels", "default_channels", "grafana_url"})
    defaults = AlertingSettings()
    channels_view = view.section("channels")
    channels = tuple((name, tuple(channels_view.text_list(name))) for name in channels_view)
    default_channels = tuple(view.text_list("default_channels"))
    for name in default_channels:
        if name not in dict(channels):
            view.reader.problem(
                view.line_of("default_channels"),
                view.key_path("default_channels"),
                f"unknown channel {name!r}; define it under alerting.channels",
            )
    rules = (
        tuple(resolve_path(base, p) for p in view.text_list("rules"))
        if "rules" in view
        else (resolve_path(base, "rules"),)
    )
    return AlertingSettings(
        rules=rules,
        interval=view.positive_duration("interval", defaults.interval),
        channels=channels,
        default_channels=default_channels,
        grafana_url=view.text("grafana_url"),
    )
