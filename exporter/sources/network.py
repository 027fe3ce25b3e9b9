"""Per-interface network counters through psutil; loopback excluded by default."""

from __future__ import annotations

import psutil
from prometheus_client.metrics_core import Metric as Family

from exporter.settings import DEFAULT_EXCLUDED_INTERFACES, NameFilter
from exporter.sources.base import family, optional

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


DEFAULT_INTERFACES = NameFilter((), DEFAULT_EXCLUDED_INTERFACES)


class NetworkSource:
    name = "network"

    def __init__(self, interfaces: NameFilter = DEFAULT_INTERFACES) -> None:
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
