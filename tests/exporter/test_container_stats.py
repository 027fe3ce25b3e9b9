"""Container arithmetic on engine answers, and where the engine is found (no engine needed).

The stats documents are trimmed copies of what Docker 20.10 answers (cgroup v1 here) and
what newer engines answer on cgroup v2; the real engine is exercised in test_containers.py.
"""

from __future__ import annotations

import pytest

from exporter.sources.containers import (
    UNIX_SOCKET,
    WINDOWS_PIPE,
    CpuSample,
    block_bytes,
    cpu_percent,
    cpu_sample,
    engine_address,
    memory_usage,
    read_timestamp,
)


@pytest.mark.parametrize(
    ("configured", "environ", "platform", "expected"),
    [
        ("", {}, "linux", UNIX_SOCKET),
        ("", {}, "darwin", UNIX_SOCKET),
        ("", {}, "win32", WINDOWS_PIPE),
        ("", {"DOCKER_HOST": "tcp://10.0.0.2:2375"}, "win32", "tcp://10.0.0.2:2375"),
        (
            "",
            {"DOCKER_HOST": "unix:///run/user/1000/docker.sock"},
            "linux",
            "unix:///run/user/1000/docker.sock",
        ),
        ("npipe:////./pipe/other", {"DOCKER_HOST": "tcp://x:1"}, "win32", "npipe:////./pipe/other"),
    ],
)
def test_engine_address_honours_config_then_docker_host_then_the_platform_default(
    configured: str, environ: dict[str, str], platform: str, expected: str
) -> None:
    assert engine_address(configured, environ, platform) == expected


def test_cpu_percent_is_on_the_docker_stats_scale() -> None:
    # 2 cores; 1.5 core-seconds used while the host spent 2 s x 2 cores: 150 % as docker stats
    before = CpuSample(total_ns=10_000_000_000, system_ns=100_000_000_000, online_cpus=2, read_at=0)
    after = CpuSample(total_ns=13_000_000_000, system_ns=104_000_000_000, online_cpus=2, read_at=2)
    assert cpu_percent(before, after) == pytest.approx(150.0)


def test_cpu_percent_without_system_time_uses_the_sample_times() -> None:
    before = CpuSample(total_ns=0 + 1, system_ns=0, online_cpus=0, read_at=10.0)
    after = CpuSample(total_ns=500_000_001, system_ns=0, online_cpus=0, read_at=11.0)
    assert cpu_percent(before, after) == pytest.approx(50.0)


def test_restarted_container_gives_no_cpu_percent_rather_than_a_negative_one() -> None:
    before = CpuSample(9_000_000_000, 100, 2, 0)
    after = CpuSample(1_000_000_000, 200, 2, 1)
    assert cpu_percent(before, after) is None


def test_memory_is_usage_minus_inactive_file_on_cgroup_v1_and_v2() -> None:
    v1 = {"usage": 100_000_000, "limit": 1 << 30, "stats": {"total_inactive_file": 30_000_000}}
    v2 = {"usage": 100_000_000, "stats": {"inactive_file": 40_000_000}}
    assert memory_usage(v1) == 70_000_000
    assert memory_usage(v2) == 60_000_000
    assert memory_usage({"usage": 5, "stats": {"inactive_file": 9}}) == 5  # never negative
    assert memory_usage({}) is None  # a stopped container


def test_block_io_sums_reads_and_writes_of_every_device_whatever_the_case() -> None:
    stats = {
        "blkio_stats": {
            "io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 4096},
                {"major": 8, "minor": 0, "op": "Write", "value": 100},
                {"major": 8, "minor": 16, "op": "read", "value": 10},
                {"major": 8, "minor": 0, "op": "Total", "value": 4196},
            ]
        }
    }
    assert block_bytes(stats) == (4106, 100)
    assert block_bytes({"blkio_stats": {"io_service_bytes_recursive": None}}) is None


def test_empty_sample_of_a_stopping_container_is_not_a_zero() -> None:
    assert cpu_sample({"cpu_stats": {"cpu_usage": {"total_usage": 0}}}) is None
    sample = cpu_sample(
        {
            "read": "2026-11-27T21:00:00.123456789Z",
            "cpu_stats": {
                "cpu_usage": {"total_usage": 5, "percpu_usage": [2, 3]},
                "system_cpu_usage": 9,
            },
        }
    )
    assert sample is not None
    assert sample == CpuSample(5, 9, 2, sample.read_at)
    assert sample.read_at == pytest.approx(read_timestamp("2026-11-27T21:00:00.123456789Z"))
    assert read_timestamp("2026-11-27T21:00:00.5Z") % 1 == pytest.approx(0.5)
