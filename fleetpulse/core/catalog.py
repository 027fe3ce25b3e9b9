"""The metric catalog: every name, type, unit and label set the exporter and collector emit.

The exporter, the dashboard generator, the rules and the tests import these entries, so a
renamed metric breaks loudly in one place instead of quietly in five.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    kind: str  # "gauge" | "counter" | "info"
    help: str
    labels: tuple[str, ...] = ()


def _m(name: str, kind: str, help_text: str, *labels: str) -> Metric:
    return Metric(name, kind, help_text, labels)


DISK_LABELS = ("mountpoint", "device", "fstype")
COMPOSE = ("compose_project", "compose_service")

HOST = (
    _m(
        "host_info",
        "gauge",
        "Host identity; always 1.",
        "hostname",
        "os",
        "os_version",
        "kernel",
        "arch",
        "exporter_version",
    ),
    _m("host_boot_time_seconds", "gauge", "Boot time as a unix timestamp."),
    _m("host_cpu_logical_processors", "gauge", "Logical CPUs."),
    _m(
        "host_cpu_usage_percent",
        "gauge",
        "Busy share of all cores since the previous collection (0-100).",
    ),
    _m("host_cpu_seconds_total", "counter", "CPU time spent per mode, summed over cores.", "mode"),
    _m("host_load_average", "gauge", "System load average.", "period"),
    _m("host_memory_total_bytes", "gauge", "Physical memory."),
    _m("host_memory_available_bytes", "gauge", "Memory available to new work without swapping."),
    _m("host_memory_used_bytes", "gauge", "Memory in use (total minus available)."),
    _m("host_memory_usage_percent", "gauge", "Used share of physical memory (0-100)."),
    _m("host_swap_total_bytes", "gauge", "Swap space."),
    _m("host_swap_used_bytes", "gauge", "Swap in use."),
    _m("host_disk_total_bytes", "gauge", "Filesystem size.", *DISK_LABELS),
    _m(
        "host_disk_free_bytes",
        "gauge",
        "Filesystem space free to unprivileged users.",
        *DISK_LABELS,
    ),
    _m("host_disk_used_bytes", "gauge", "Filesystem space used.", *DISK_LABELS),
    _m("host_disk_usage_percent", "gauge", "Used share of the filesystem (0-100).", *DISK_LABELS),
    _m("host_disk_read_bytes_total", "counter", "Bytes read from the device.", "device"),
    _m("host_disk_written_bytes_total", "counter", "Bytes written to the device.", "device"),
    _m("host_disk_reads_total", "counter", "Read operations completed.", "device"),
    _m("host_disk_writes_total", "counter", "Write operations completed.", "device"),
    _m(
        "host_temperature_celsius",
        "gauge",
        "Hardware sensor temperature, where psutil offers it.",
        "sensor",
        "label",
    ),
)

NETWORK = tuple(
    _m(
        f"network_{direction}_{what}_total",
        "counter",
        f"{what.capitalize()} {'received' if direction == 'receive' else 'transmitted'} "
        "on the interface.",
        "interface",
    )
    for direction in ("receive", "transmit")
    for what in ("bytes", "packets", "errors", "drops")
)

CONTAINER = (
    _m(
        "container_info",
        "gauge",
        "Container identity and state; always 1.",
        "container",
        "id",
        "image",
        "state",
        "health",
        *COMPOSE,
    ),
    _m("container_up", "gauge", "1 if the container is running, else 0.", "container", *COMPOSE),
    _m("container_restarts_total", "counter", "Restarts by the engine.", "container", *COMPOSE),
    _m("container_cpu_seconds_total", "counter", "CPU time used.", "container", *COMPOSE),
    _m(
        "container_cpu_usage_percent",
        "gauge",
        "CPU use since the previous collection; 100 = one full core, as docker stats.",
        "container",
        *COMPOSE,
    ),
    _m(
        "container_memory_usage_bytes",
        "gauge",
        "Memory used minus inactive file cache.",
        "container",
        *COMPOSE,
    ),
    _m("container_memory_limit_bytes", "gauge", "Memory limit.", "container", *COMPOSE),
    _m(
        "container_memory_usage_percent",
        "gauge",
        "Memory used against the limit (0-100).",
        "container",
        *COMPOSE,
    ),
    *(
        _m(
            f"container_network_{direction}_{what}_total",
            "counter",
            f"{what.capitalize()} {'received' if direction == 'receive' else 'transmitted'} "
            "by the container.",
            "container",
            *COMPOSE,
            "interface",
        )
        for direction in ("receive", "transmit")
        for what in ("bytes", "packets")
    ),
    _m(
        "container_block_read_bytes_total",
        "counter",
        "Bytes read from block devices.",
        "container",
        *COMPOSE,
    ),
    _m(
        "container_block_written_bytes_total",
        "counter",
        "Bytes written to block devices.",
        "container",
        *COMPOSE,
    ),
    _m("container_pids", "gauge", "Processes and threads in the container.", "container", *COMPOSE),
)

EXPORTER = (
    _m(
        "exporter_collect_duration_seconds",
        "gauge",
        "How long the source's last collection took.",
        "source",
    ),
    _m("exporter_collect_errors_total", "counter", "Failed collections of the source.", "source"),
)

SCRAPE = (
    _m("up", "gauge", "1 if the last scrape of the target succeeded, else 0.", "host", "job"),
    _m("scrape_duration_seconds", "gauge", "How long the scrape took.", "host", "job"),
    _m("scrape_samples_scraped", "gauge", "Samples the target exposed.", "host", "job"),
    _m(
        "scrape_clock_skew_seconds",
        "gauge",
        "How far the target's clock is ahead of the collector's (negative: behind), from the "
        "Date header of its answer; absent when it sends none.",
        "host",
        "job",
    ),
    _m(
        "fleetpulse_threshold",
        "gauge",
        "A host's effective threshold level (thresholds.yaml with the API's overrides over "
        "it), written by the collector once per scrape interval.",
        "host",
        "key",
        "level",
    ),
    _m(
        "fleetpulse_thresholds_customized",
        "gauge",
        "1 if a host's effective threshold levels differ from the defaults, else 0; written "
        "with fleetpulse_threshold.",
        "host",
    ),
)

ALL = HOST + NETWORK + CONTAINER + EXPORTER + SCRAPE
BY_NAME = {metric.name: metric for metric in ALL}
