"""The `exporter:` section of fleetpulse.yaml, owned by the exporter."""

from __future__ import annotations

from dataclasses import dataclass

from fleetpulse.listen import Listen, listen_value
from fleetpulse.yamlfile import MapView


@dataclass(frozen=True, slots=True)
class ExporterSettings:
    listen: Listen = Listen("0.0.0.0", 9184)
    listen_set: bool = False  # `fleetpulse up` binds to 127.0.0.1 unless the file set it
    interval: float = 15.0


def parse_exporter(view: MapView) -> ExporterSettings:
    view.check_keys({"listen", "interval"})
    defaults = ExporterSettings()
    return ExporterSettings(
        listen=listen_value(view, "listen", defaults.listen),
        listen_set="listen" in view,
        interval=view.positive_duration("interval", defaults.interval),
    )
