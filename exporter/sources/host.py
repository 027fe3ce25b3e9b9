"""Host metrics through psutil only (CPU, load, memory, swap, temperatures, boot, identity).

No /proc parsing, so the same code runs on Linux, macOS and Windows; families a platform
cannot provide are simply absent.
"""

from __future__ import annotations

import os
import platform
import socket
import threading
import time
from typing import Any

import psutil
from prometheus_client.metrics_core import Metric as Family

from exporter.sources.base import family, optional
from fleetpulse import __version__

CpuTimes = Any  # psutil's per-platform named tuple of cpu_times()
# Below this many seconds between CPU samples the busy share is noise, so sample again.
MIN_CPU_WINDOW = 0.25


def busy_percent(before: CpuTimes, after: CpuTimes) -> float:
    """Busy share of all cores between two `cpu_times()` readings (0-100)."""

    def idle(t: CpuTimes) -> float:
        return float(t.idle + getattr(t, "iowait", 0.0))

    total: float = sum(after) - sum(before)
    # guest time is already counted in user on Linux, so subtract it from the total too
    for field in ("guest", "guest_nice"):
        total -= getattr(after, field, 0.0) - getattr(before, field, 0.0)
    if total <= 0:
        return 0.0
    busy = total - (idle(after) - idle(before))
    return min(100.0, max(0.0, busy / total * 100.0))


class HostSource:
    name = "host"

    def __init__(self, temperatures: bool = True) -> None:
        self.temperatures = temperatures
        self._lock = threading.Lock()
        self._last_cpu: tuple[float, CpuTimes] | None = None
        self._info = self._host_info()

    @staticmethod
    def _host_info() -> dict[str, str]:
        uname = platform.uname()
        os_name, os_version = uname.system, uname.release
        if uname.system == "Linux":
            release = optional(platform.freedesktop_os_release)
            if isinstance(release, dict):
                os_name = release.get("ID", "linux")
                os_version = release.get("VERSION_ID", "")
        elif uname.system == "Darwin":
            os_name, os_version = "macos", platform.mac_ver()[0]
        elif uname.system == "Windows":
            os_name, os_version = "windows", platform.version()
        return {
            "hostname": socket.gethostname(),
            "os": os_name.lower(),
            "os_version": os_version,
            "kernel": uname.release,
            "arch": uname.machine,
            "exporter_version": __version__,
        }

    def _cpu_percent(self) -> float:
        with self._lock:
            now = time.monotonic()
            if self._last_cpu is None or now - self._last_cpu[0] < MIN_CPU_WINDOW:
                before = psutil.cpu_times()
                time.sleep(MIN_CPU_WINDOW)
                now = time.monotonic()
            else:
                before = self._last_cpu[1]
            after = psutil.cpu_times()
            self._last_cpu = (now, after)
        return busy_percent(before, after)

    def collect(self) -> list[Family]:
        families: list[Family] = []
        info = family("host_info")
        info.add_metric(list(self._info.values()), 1.0)
        families.append(info)

        boot = family("host_boot_time_seconds")
        boot.add_metric([], psutil.boot_time())
        count = family("host_cpu_logical_processors")
        count.add_metric([], float(psutil.cpu_count(logical=True) or os.cpu_count() or 1))
        usage = family("host_cpu_usage_percent")
        usage.add_metric([], self._cpu_percent())
        families += [boot, count, usage]

        times = psutil.cpu_times()
        seconds = family("host_cpu_seconds_total")
        for mode, value in times._asdict().items():
            seconds.add_metric([mode], float(value))
        families.append(seconds)

        load = optional(lambda: psutil.getloadavg())
        if isinstance(load, tuple):
            load_family = family("host_load_average")
            for period, value in zip(("1m", "5m", "15m"), load, strict=True):
                load_family.add_metric([period], float(value))
            families.append(load_family)

        families += self._memory()
        if self.temperatures:
            families += self._temperatures()
        return families

    def _memory(self) -> list[Family]:
        mem = psutil.virtual_memory()
        used = mem.total - mem.available
        values = {
            "host_memory_total_bytes": mem.total,
            "host_memory_available_bytes": mem.available,
            "host_memory_used_bytes": used,
            "host_memory_usage_percent": used / mem.total * 100.0 if mem.total else 0.0,
        }
        swap: Any = optional(lambda: psutil.swap_memory())
        if swap is not None:
            values["host_swap_total_bytes"] = swap.total
            values["host_swap_used_bytes"] = swap.used
        out: list[Family] = []
        for name, value in values.items():
            fam = family(name)
            fam.add_metric([], float(value))
            out.append(fam)
        return out

    def _temperatures(self) -> list[Family]:
        sensors = optional(lambda: psutil.sensors_temperatures())  # absent on Windows and macOS
        if not isinstance(sensors, dict) or not sensors:
            return []
        fam = family("host_temperature_celsius")
        seen: set[tuple[str, str]] = set()
        for sensor, readings in sensors.items():
            for i, reading in enumerate(readings):
                label = reading.label or str(i)
                if (sensor, label) in seen:
                    continue
                seen.add((sensor, label))
                fam.add_metric([sensor, label], float(reading.current))
        return [fam] if fam.samples else []
