"""The container source against a real Docker engine (the private one from .ci/start-docker).

Containers of each test live in their own sandbox; the source only looks at them (an
include glob on the sandbox's name prefix), since other tests share the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

import aiohttp
import pytest
from prometheus_client.metrics_core import Metric

from exporter.dockerapi import Engine, EngineError
from exporter.service import start_exporter
from exporter.settings import DockerSettings, ExporterSettings, NameFilter, SourceSettings
from exporter.sources.containers import ContainerSource
from fleetpulse.core.listen import Listen
from tests.support.docker_engine import (
    DockerEngine,
    DockerSandbox,
    close_sockets_of_failed_connects,
    private_engine,
    wait_for_status,
)
from tests.support.poll import eventually_sync

pytestmark = pytest.mark.docker

Values = dict[tuple[str, str], float]  # (metric, container short name) -> value


@pytest.fixture
def source(engine: DockerEngine, sandbox: DockerSandbox) -> Iterator[ContainerSource]:
    src = ContainerSource(
        DockerSettings(host=engine.url), NameFilter(include=(f"{sandbox.prefix}-*",))
    )
    yield src
    src.close()


def by_container(families: list[Metric], prefix: str, key: str = "") -> Values:
    """Values per (metric, short container name), or (metric, label `key`) when given."""
    out: Values = {}
    for fam in families:
        for sample in fam.samples:
            short = sample.labels["container"].removeprefix(prefix + "-")
            out[(sample.name, sample.labels.get(key, "") if key else short)] = sample.value
    return out


def info_labels(families: list[Metric], container: str) -> dict[str, str]:
    for fam in families:
        for sample in fam.samples:
            if sample.name == "container_info" and sample.labels["container"] == container:
                return dict(sample.labels)
    raise AssertionError(f"no container_info for {container}")


def test_busy_container_shows_more_cpu_and_memory_than_idle_one(
    sandbox: DockerSandbox, source: ContainerSource
) -> None:
    net = sandbox.create_network("net")
    # dd with a 64 MiB block: one core busy and 64 MiB of anonymous memory touched
    sandbox.run_container("busy", "dd if=/dev/zero of=/dev/null bs=64M", network=net)
    sandbox.run_container("idle", "sleep 3600", network=net)
    source.collect()  # the first sample: CPU percent needs two of ours
    values: Values = {}

    def both_have_cpu_percent() -> bool:
        nonlocal values
        values = by_container(source.collect(), sandbox.prefix)
        return all(("container_cpu_usage_percent", c) in values for c in ("busy", "idle"))

    eventually_sync(both_have_cpu_percent, "CPU percent of busy and idle", within=30)
    assert (
        values[("container_cpu_usage_percent", "busy")]
        > values[("container_cpu_usage_percent", "idle")]
    )
    assert (
        values[("container_cpu_seconds_total", "busy")]
        > values[("container_cpu_seconds_total", "idle")]
    )
    busy_memory = values[("container_memory_usage_bytes", "busy")]
    assert busy_memory > values[("container_memory_usage_bytes", "idle")]
    assert busy_memory >= 32 * 2**20
    for name in ("busy", "idle"):
        assert values[("container_up", name)] == 1
        assert 0 <= values[("container_memory_usage_percent", name)] <= 100
        assert values[("container_memory_limit_bytes", name)] >= busy_memory
        assert values[("container_pids", name)] >= 1
        assert ("container_block_read_bytes_total", name) in values


def test_network_counters_move_in_the_direction_of_the_traffic(
    sandbox: DockerSandbox, source: ContainerSource
) -> None:
    net = sandbox.create_network("net")
    size = 2_000_000
    server = sandbox.run_container(
        "server",
        f"mkdir -p /www && head -c {size} /dev/zero > /www/big && httpd -f -p 8080 -h /www",
        network=net,
    )
    client = sandbox.run_container("client", "sleep 3600", network=net)
    before = by_container(source.collect(), sandbox.prefix)
    eventually_sync(
        lambda: (
            client.exec_run(["wget", "-q", "-O", "/dev/null", "http://server:8080/big"])[0] == 0
        ),
        "the client's download from the server",
        within=30,
    )
    after = by_container(source.collect(), sandbox.prefix)

    def moved(metric: str, name: str) -> float:
        key = (f"container_network_{metric}_total", name)
        return after[key] - before[key]

    # the interface label is the container's own name for it
    interfaces = by_container(source.collect(), sandbox.prefix, key="interface")
    assert ("container_network_receive_bytes_total", "eth0") in interfaces
    assert moved("receive_bytes", "client") >= size > moved("transmit_bytes", "client")
    assert moved("transmit_bytes", "server") >= size > moved("receive_bytes", "server")
    assert moved("receive_packets", "client") > 0 and moved("transmit_packets", "server") > 0
    assert server.name and client.name


def test_stopped_container_is_marked_down_with_its_state(
    sandbox: DockerSandbox, source: ContainerSource
) -> None:
    net = sandbox.create_network("net")
    gone = sandbox.run_container("gone", "sleep 3600", network=net)
    assert by_container(source.collect(), sandbox.prefix)[("container_up", "gone")] == 1
    gone.stop(timeout=5)
    wait_for_status(gone, "exited")
    families = source.collect()
    values = by_container(families, sandbox.prefix)
    assert values[("container_up", "gone")] == 0
    assert ("container_cpu_seconds_total", "gone") not in values
    assert info_labels(families, gone.name or "")["state"] == "exited"


def test_compose_labels_health_restarts_and_name_filters(
    sandbox: DockerSandbox, engine: DockerEngine
) -> None:
    net = sandbox.create_network("net")
    sandbox.run_container(
        "web",
        "sleep 3600",
        network=net,
        labels={"com.docker.compose.project": "game", "com.docker.compose.service": "web"},
        healthcheck={"test": ["CMD", "true"], "interval": 200_000_000, "retries": 1},
    )
    sandbox.run_container(
        "crashy",
        "sleep 0.2; exit 3",
        network=net,
        wait_running=False,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 2},
    )
    sandbox.run_container("skipped", "sleep 3600", network=net)
    src = ContainerSource(
        DockerSettings(host=engine.url),
        NameFilter(include=(f"{sandbox.prefix}-*",), exclude=("*-skipped",)),
    )
    try:
        families: list[Metric] = []

        def settled() -> bool:
            nonlocal families
            families = src.collect()
            values = by_container(families, sandbox.prefix)
            web = info_labels(families, sandbox.full_name("web"))
            return (
                web["health"] == "healthy" and values[("container_restarts_total", "crashy")] >= 1
            )

        eventually_sync(settled, "web healthy and crashy restarted", within=30)
    finally:
        src.close()
    web = info_labels(families, sandbox.full_name("web"))
    assert (web["compose_project"], web["compose_service"]) == ("game", "web")
    assert web["image"] == engine.image and len(web["id"]) == 12
    names = {key[1] for key in by_container(families, sandbox.prefix)}
    assert names == {"web", "crashy"}
    for fam in families:
        for sample in fam.samples:
            if sample.labels["container"] == sandbox.full_name("web"):
                assert sample.labels["compose_project"] == "game"


async def fetch(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
        return await response.text()


def sample_value(text: str, prefix: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


async def poll_metrics(
    session: aiohttp.ClientSession, url: str, check: Callable[[str], bool], within: float = 60.0
) -> str:
    deadline = time.monotonic() + within
    while True:
        text = await fetch(session, url)
        if check(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics never matched; last:\n{text[:3000]}")
        await asyncio.sleep(0.2)


async def test_engine_killed_host_metrics_flow_and_containers_come_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    close_sockets_of_failed_connects(monkeypatch)
    # a throw-away engine: killing the shared one would disturb other test processes
    with private_engine("expkill") as engine, contextlib.ExitStack() as stack:
        box = await asyncio.to_thread(engine.sandbox, "kill")
        stack.callback(box.cleanup)
        await asyncio.to_thread(box.run_container, "alive", "sleep 3600")
        fast = SourceSettings(interval=0.3, timeout=5.0)
        settings = ExporterSettings(
            listen=Listen("127.0.0.1", 0),
            host=fast,
            containers=fast,
            disk=SourceSettings(enabled=False),
            network=SourceSettings(enabled=False),
            docker=DockerSettings(host=engine.url, request_timeout=5.0),
        )
        running = await start_exporter(settings)
        try:
            async with aiohttp.ClientSession() as session:
                url = running.url
                alive = f'container_up{{compose_project="",compose_service="",container="{box.full_name("alive")}"}}'
                await poll_metrics(session, url, lambda t: sample_value(t, alive) == 1)

                await asyncio.to_thread(engine.stop)  # SIGKILL, as in a crash
                errors = 'exporter_collect_errors_total{source="containers"}'
                cpu = 'host_cpu_seconds_total{mode="user"}'
                text = await poll_metrics(
                    session,
                    url,
                    lambda t: (
                        (sample_value(t, errors) or 0) > 0
                        and "container_up{" not in t
                        and sample_value(t, cpu) is not None
                    ),
                )
                # the host source keeps collecting: its CPU counters still move
                first = sample_value(text, cpu) or 0.0
                await poll_metrics(session, url, lambda t: (sample_value(t, cpu) or 0) > first)

                await asyncio.to_thread(engine.start)
                # it comes back by itself; the engine stopped what outlived it (exited, down)
                await poll_metrics(session, url, lambda t: sample_value(t, alive) == 0)
        finally:
            await running.stop()


def test_our_engine_client_sees_what_the_docker_sdk_sees(
    engine: DockerEngine, sandbox: DockerSandbox
) -> None:
    """exporter.dockerapi against the official client, on the same engine."""
    sandbox.run_container("one", "sleep 3600")
    sdk = engine.client()
    try:
        expected = {c["Id"]: c["Names"] for c in sdk.api.containers(all=True)}
        inspected = sdk.api.inspect_container(sandbox.full_name("one"))
    finally:
        sdk.close()
    ours = Engine(engine.url, timeout=10)
    try:
        ours.negotiate()
        assert {c["Id"]: c["Names"] for c in ours.containers()} == expected
        mine = ours.inspect(inspected["Id"])
        assert mine["Id"] == inspected["Id"] and mine["State"]["Running"] is True
        stats = ours.stats(inspected["Id"])
        assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert stats["pids_stats"]["current"] >= 1
        with pytest.raises(EngineError) as caught:
            ours.inspect("fleetpulse-no-such-container")
        assert caught.value.status == 404
    finally:
        ours.close()
