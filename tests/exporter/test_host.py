"""Host and network sources read from the real machine, checked for sanity."""

import time
from collections import namedtuple

import psutil
import pytest
from prometheus_client.metrics_core import Metric

from exporter.settings import NameFilter
from exporter.sources.disk import DiskSource
from exporter.sources.host import HostSource, busy_percent
from exporter.sources.network import NetworkSource


def values(families: list[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def named(families: list[Metric], name: str) -> list[float]:
    return [s.value for f in families for s in f.samples if s.name == name]


def test_host_usage_gauges_are_percentages_and_totals_cover_used() -> None:
    families = HostSource().collect() + DiskSource().collect()
    (cpu,) = named(families, "host_cpu_usage_percent")
    (memory,) = named(families, "host_memory_usage_percent")
    assert 0 <= cpu <= 100
    assert 0 <= memory <= 100
    disks = named(families, "host_disk_usage_percent")
    assert disks and all(0 <= d <= 100 for d in disks)
    assert (
        named(families, "host_memory_total_bytes")[0]
        >= named(families, "host_memory_used_bytes")[0]
    )
    for total, used in zip(
        named(families, "host_disk_total_bytes"),
        named(families, "host_disk_used_bytes"),
        strict=True,
    ):
        assert total >= used
    assert named(families, "host_cpu_logical_processors")[0] == psutil.cpu_count()
    (info,) = [s for f in families for s in f.samples if s.name == "host_info"]
    assert info.value == 1 and info.labels["hostname"] and info.labels["exporter_version"]


def test_counters_never_decrease_between_collections() -> None:
    host, disk, network = HostSource(), DiskSource(), NetworkSource(NameFilter())
    first = values(host.collect() + disk.collect() + network.collect())
    time.sleep(0.3)
    second = values(host.collect() + disk.collect() + network.collect())
    counters = [key for key in first if key[0].endswith("_total")]
    assert any(k[0] == "host_cpu_seconds_total" for k in counters)
    assert any(k[0] == "network_receive_bytes_total" for k in counters)
    for key in counters:
        if key in second:
            assert second[key] >= first[key], key


def test_pseudo_filesystems_and_loopback_are_excluded_by_default() -> None:
    families = DiskSource().collect() + NetworkSource().collect()
    fstypes = {
        s.labels.get("fstype")
        for f in families
        for s in f.samples
        if s.name == "host_disk_usage_percent"
    }
    assert not fstypes & {"tmpfs", "overlay", "proc", "sysfs", "squashfs"}
    interfaces = {
        s.labels["interface"] for f in families for s in f.samples if s.name.startswith("network_")
    }
    assert "lo" not in interfaces


def test_interface_filter_include_and_exclude_globs() -> None:
    keep_eth = NameFilter(include=("eth*",), exclude=("eth9",))
    assert keep_eth.keeps("eth0") and not keep_eth.keeps("eth9") and not keep_eth.keeps("docker0")


@pytest.mark.parametrize(
    ("before", "after", "percent"),
    [
        ((10, 0, 5, 85, 0), (20, 0, 10, 155, 5), 15 / 90 * 100),
        ((1, 0, 1, 1, 0), (1, 0, 1, 1, 0), 0),
    ],
)
def test_busy_percent_counts_idle_and_iowait_as_not_busy(
    before: tuple[float, ...], after: tuple[float, ...], percent: float
) -> None:
    times = namedtuple("times", ("user", "nice", "system", "idle", "iowait"))
    assert busy_percent(times(*before), times(*after)) == pytest.approx(percent)
