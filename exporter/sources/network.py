"""Per-interface network counters through psutil; loopback excluded by default."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import psutil
from prometheus_client.metrics_core import Metric as Family

from exporter.sources.base import family, optional

# Linux names its loopback "lo", macOS "lo0", Windows "Loopback Pseudo-Interface 1".
DEFAULT_EXCLUDED_INTERFACES = ("lo", "lo0", "Loopback*")

FIELDS = {
    "network_receive_bytes_total": "bytes_recv",
    "network_transmit_bytes_total": "bytes_sent",
    "network_receive_packets_total": "packets_recv",
    "network_transmit_packets_total": "packets_sent",
    "network_receive_errors_total": "errin",
    "network_transmit_errors_total": "errout",
    "network_receive_drops_total": "dropin",
    "network_transmit_drops_total": "dropout",
}


@dataclass(frozen=True, slots=True)
class InterfaceFilter:
    include: tuple[str, ...] = ()  # globs; empty means every interface
    exclude: tuple[str, ...] = DEFAULT_EXCLUDED_INTERFACES

    def keeps(self, name: str) -> bool:
        if self.include and not any(fnmatch.fnmatchcase(name, p) for p in self.include):
            return False
        return not any(fnmatch.fnmatchcase(name, p) for p in self.exclude)


class NetworkSource:
    name = "network"

    def __init__(self, interfaces: InterfaceFilter = InterfaceFilter()) -> None:
        self.interfaces = interfaces

    def collect(self) -> list[Family]:
        counters = optional(lambda: psutil.net_io_counters(pernic=True))
        if not isinstance(counters, dict):
            return []
        fams = {name: family(name) for name in FIELDS}
        for interface, io in sorted(counters.items()):
            if not self.interfaces.keeps(interface):
                continue
            for name, attr in FIELDS.items():
                fams[name].add_metric([interface], float(getattr(io, attr)))
        return [f for f in fams.values() if f.samples]
