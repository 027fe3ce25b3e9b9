"""Filesystem usage per real filesystem and I/O counters per device, through psutil.

A source of its own, apart from CPU and memory: a hung network mount can stall
`disk_usage` for its whole timeout, and that must not cost the host metrics their turn.
"""

from __future__ import annotations

import os
import re
from functools import partial
from typing import Any

import psutil
from prometheus_client.metrics_core import Metric as Family

from exporter.settings import DiskFilter
from exporter.sources.base import family, optional

DEFAULT_DISKS = DiskFilter()


class DiskSource:
    name = "disk"

    def __init__(self, disks: DiskFilter = DEFAULT_DISKS) -> None:
        self.disks = disks
        self._device_excluded = re.compile(disks.excluded_devices)

    def collect(self) -> list[Family]:
        return self._disk_usage() + self._disk_io()

    def _disk_usage(self) -> list[Family]:
        names = ("total", "free", "used", "usage_percent")
        fams = {
            n: family(f"host_disk_{n}" if n == "usage_percent" else f"host_disk_{n}_bytes")
            for n in names
        }
        # A device mounted twice (bind mounts, container engines' data roots) is one
        # filesystem with one usage, so keep only its shortest mountpoint.
        chosen: dict[str, Any] = {}
        for part in psutil.disk_partitions(all=False):
            if not self.disks.keeps_mount(part.fstype, part.mountpoint):
                continue
            if not os.path.isdir(part.mountpoint):
                continue  # bind-mounted files in containers are not filesystems
            known = chosen.get(part.device)
            if known is None or len(part.mountpoint) < len(known.mountpoint):
                chosen[part.device] = part
        for part in chosen.values():
            usage: Any = optional(partial(psutil.disk_usage, part.mountpoint))
            if usage is None:
                continue  # an unreadable or vanished mount; the others still count
            labels = [part.mountpoint, part.device, part.fstype]
            fams["total"].add_metric(labels, float(usage.total))
            fams["free"].add_metric(labels, float(usage.free))
            fams["used"].add_metric(labels, float(usage.used))
            fams["usage_percent"].add_metric(labels, float(usage.percent))
        return [f for f in fams.values() if f.samples]

    def _disk_io(self) -> list[Family]:
        counters = optional(lambda: psutil.disk_io_counters(perdisk=True))
        if not isinstance(counters, dict) or not counters:
            return []
        fields = {
            "host_disk_read_bytes_total": "read_bytes",
            "host_disk_written_bytes_total": "write_bytes",
            "host_disk_reads_total": "read_count",
            "host_disk_writes_total": "write_count",
        }
        fams = {name: family(name) for name in fields}
        for device, io in counters.items():
            if self._device_excluded.match(device):
                continue
            for name, attr in fields.items():
                fams[name].add_metric([device], float(getattr(io, attr)))
        return [f for f in fams.values() if f.samples]
