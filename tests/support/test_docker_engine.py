"""The private Docker engine works: containers, a user-defined bridge, stats, stop/start.

What the exporter relies on is checked against the real engine (Debian docker.io 20.10,
API 1.41, cgroup v1 here): per-container CPU counters that grow under load, ``eth0``
counters for containers on a bridge network, ``one_shot`` stats without ``precpu_stats``,
and an engine that goes away (connection refused) and comes back.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from datetime import UTC, datetime
from typing import Any

import docker
import pytest
import requests
from docker.models.containers import Container

from tests.support.docker_engine import (
    TEST_LABEL,
    DockerEngine,
    DockerSandbox,
    close_sockets_of_failed_connects,
    private_engine,
    wait_for_status,
)

pytestmark = pytest.mark.docker


def cpu_total(stats: dict[str, Any]) -> int:
    return int(stats["cpu_stats"]["cpu_usage"]["total_usage"])


def read_time(stats: dict[str, Any]) -> float:
    """The sample's ``read`` time (RFC 3339 with nanoseconds) as a POSIX timestamp."""
    whole, _, rest = stats["read"].rstrip("Z").partition(".")
    stamp = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp()
    return stamp + float(f"0.{rest or 0}")


def test_engine_answers_with_the_test_image(engine: DockerEngine) -> None:
    assert engine.url.startswith("unix:///")
    assert engine.is_running()
    client = engine.client()
    try:
        version = client.version()
        assert version["ApiVersion"] >= "1.41"
        info = client.info()
        assert info["Driver"] == "vfs"
        image = client.images.get(engine.image)
        assert image.labels.get("org.fleetpulse.image") == "test"
    finally:
        client.close()


def test_image_has_the_busybox_applets_tests_use(sandbox: DockerSandbox) -> None:
    applets = "sh sleep yes dd nc httpd cat head ip ping wget"
    output = sandbox.client.containers.run(
        sandbox.engine.image,
        ["sh", "-c", f"for a in {applets}; do command -v $a || echo missing $a; done"],
        labels=sandbox.labels,
        name=sandbox.full_name("applets"),
        remove=True,
    ).decode()
    assert "missing" not in output, output
    assert len(output.split()) == len(applets.split())


def test_busy_and_idle_containers_on_a_user_bridge(sandbox: DockerSandbox) -> None:
    net = sandbox.create_network("net")
    busy = sandbox.run_container("busy", "yes > /dev/null", network=net)
    idle = sandbox.run_container("idle", "sleep 3600", network=net)

    # both are labelled, on the user-defined network, with an eth0 inside
    mine = sandbox.client.containers.list(filters={"label": f"{TEST_LABEL}={sandbox.token}"})
    assert {c.name for c in mine} == {busy.name, idle.name}
    for container in (busy, idle):
        container.reload()
        assert net.name in container.attrs["NetworkSettings"]["Networks"]
        code, out = container.exec_run(["cat", "/sys/class/net/eth0/address"])
        assert code == 0, out

    # traffic between them, by the short DNS alias on the user network
    code, out = idle.exec_run(["ping", "-c", "3", "-W", "2", "busy"])
    assert code == 0, out.decode(errors="replace")

    # one_shot: a single sample, no precpu (a rate needs two samples of ours)
    first = busy.stats(stream=False, one_shot=True)
    assert first["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    time.sleep(1.0)
    second = busy.stats(stream=False, one_shot=True)
    used = cpu_total(second) - cpu_total(first)
    assert used > 0.3e9, f"busy container used only {used} ns of CPU in 1 s"
    assert second["cpu_stats"]["online_cpus"] >= 1
    assert second["pids_stats"]["current"] >= 1
    assert second["memory_stats"]["usage"] > 0

    idle_stats = idle.stats(stream=False, one_shot=True)
    assert set(idle_stats["networks"]) == {"eth0"}
    for stats in (second, idle_stats):
        eth0 = stats["networks"]["eth0"]
        for key in ("rx_bytes", "rx_packets", "tx_bytes", "tx_packets", "rx_errors", "tx_dropped"):
            assert isinstance(eth0[key], int)
        assert eth0["rx_packets"] >= 3 and eth0["tx_packets"] >= 3

    # the idle one uses (almost) no CPU over the same kind of interval
    before = cpu_total(idle_stats)
    time.sleep(0.5)
    after = cpu_total(idle.stats(stream=False, one_shot=True))
    assert after - before < 0.1e9


def test_full_stats_carry_precpu_for_a_rate(sandbox: DockerSandbox) -> None:
    net = sandbox.create_network("net")
    busy = sandbox.run_container(
        "busy", "while :; do dd if=/dev/zero of=/dev/null 2>/dev/null; done", network=net
    )
    stats = busy.stats(stream=False)  # waits for the engine's second sample (~1-2 s)
    cpu, pre = stats["cpu_stats"], stats["precpu_stats"]
    cpu_delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    system_delta = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
    percent = cpu_delta / system_delta * cpu["online_cpus"] * 100
    assert 30 < percent < 110 * cpu["online_cpus"], percent


def test_streaming_stats_yield_samples_about_once_a_second(sandbox: DockerSandbox) -> None:
    net = sandbox.create_network("net")
    busy = sandbox.run_container("busy", "yes > /dev/null", network=net)
    stream = busy.stats(stream=True, decode=True)
    try:
        samples = [next(stream) for _ in range(3)]
    finally:
        stream.close()
    totals = [cpu_total(s) for s in samples]
    assert totals == sorted(totals) and totals[-1] > totals[0]
    reads = [read_time(s) for s in samples]
    gaps = [b - a for a, b in itertools.pairwise(reads)]
    assert all(0.5 < gap < 3.0 for gap in gaps), gaps
    assert all("eth0" in s["networks"] for s in samples)


def test_stats_of_a_stopped_container_are_empty_not_an_error(sandbox: DockerSandbox) -> None:
    net = sandbox.create_network("net")
    gone = sandbox.run_container("gone", "sleep 3600", network=net)
    gone.stop(timeout=5)
    wait_for_status(gone, "exited")
    stats = gone.stats(stream=False, one_shot=True)
    assert not stats.get("networks")
    assert not stats["cpu_stats"].get("cpu_usage", {}).get("total_usage")


def test_cleanup_removes_the_sandbox_containers_and_network(engine: DockerEngine) -> None:
    box = engine.sandbox("cleanup")
    net = box.create_network("net")
    box.run_container("one", "sleep 3600", network=net)
    box.cleanup()
    client = engine.client()
    try:
        label = f"{TEST_LABEL}={box.token}"
        assert client.containers.list(all=True, filters={"label": label}) == []
        assert client.networks.list(filters={"label": label}) == []
    finally:
        client.close()


def test_engine_stop_and_start_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    close_sockets_of_failed_connects(monkeypatch)
    # a throw-away engine: stopping the shared one would disturb other test processes
    with private_engine("roundtrip") as engine, contextlib.ExitStack() as stack:
        box = engine.sandbox("roundtrip")
        stack.callback(box.cleanup)
        net = box.create_network("net")
        survivor: Container = box.run_container("survivor", "sleep 3600", network=net)
        client = box.client

        engine.stop()  # SIGKILL, as in a crash
        assert not engine.is_running()
        assert engine.dockerd_pid() is None
        with pytest.raises((docker.errors.DockerException, requests.exceptions.ConnectionError)):
            client.ping()

        started = time.monotonic()
        engine.start()
        assert engine.is_running()
        assert time.monotonic() - started < 30
        # the same client works again; the container that outlived dockerd was stopped
        assert client.ping()
        survivor.reload()
        assert survivor.status == "exited"
        survivor.start()
        wait_for_status(survivor, "running")
        stats = survivor.stats(stream=False, one_shot=True)
        assert "eth0" in stats["networks"]

        engine.stop(graceful=True)
        assert not engine.is_running()
        engine.start()
        assert engine.is_running()
