"""The exporter over HTTP on loopback: cached scrapes, failing sources, auth and TLS."""

from __future__ import annotations

import asyncio
import base64
import ssl
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.metrics_core import Metric

from exporter.collect import ExpositionCache, SourceSchedule, run_collection
from exporter.server import make_app
from exporter.service import RunningExporter, start_exporter
from exporter.settings import (
    DockerSettings,
    ExporterSettings,
    SourceSettings,
    TlsSettings,
)
from exporter.sources.base import family
from fleetpulse.app.config import load_config
from fleetpulse.core.errors import ConfigError
from fleetpulse.core.httpauth import AuthSettings
from fleetpulse.core.listen import Listen
from fleetpulse.core.site import start_site
from tests.support.poll import eventually
from tests.support.servers import free_port
from tests.support.tls import self_signed

OFF = SourceSettings(enabled=False)


class CountingSource:
    """Counts its collections; fails on demand (a real source's contract, nothing mocked)."""

    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.calls = 0
        self._lock = threading.Lock()

    def collect(self) -> list[Metric]:
        with self._lock:
            self.calls += 1
        if self.fail:
            raise OSError("disk on fire")
        fam = family("host_cpu_logical_processors")
        fam.add_metric([], float(self.calls))
        return [fam]


@asynccontextmanager
async def serving(
    sources: list[CountingSource], interval: float, auth: AuthSettings | None = None
) -> AsyncIterator[tuple[str, ExpositionCache]]:
    cache = ExpositionCache([s.name for s in sources])
    task = asyncio.create_task(
        run_collection([SourceSchedule(s, interval, 5.0) for s in sources], cache)
    )
    runner, bound = await start_site(
        make_app(cache, auth or AuthSettings()), Listen("127.0.0.1", 0), shutdown_timeout=0.1
    )
    try:
        yield f"http://127.0.0.1:{bound.port}", cache
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()


async def get(
    url: str, headers: dict[str, str] | None = None, ssl_context: ssl.SSLContext | bool = True
) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            url, headers=headers, ssl=ssl_context, timeout=aiohttp.ClientTimeout(total=10)
        ) as response,
    ):
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def errors_counted(cache: ExpositionCache, source: str) -> float:
    """The source's `exporter_collect_errors_total`, as the cache serves it on /metrics."""
    prefix = f'exporter_collect_errors_total{{source="{source}"}} '
    lines = cache.text().decode().splitlines()
    return next((float(line[len(prefix) :]) for line in lines if line.startswith(prefix)), 0.0)


async def test_scrapes_serve_the_cache_and_never_collect() -> None:
    source = CountingSource("slow")
    async with serving([source], interval=3600.0) as (url, cache):
        await eventually(cache.ready.is_set, "the first collection", within=30)
        for _ in range(20):
            status, _, body = await get(f"{url}/metrics")
            assert status == 200 and "host_cpu_logical_processors 1.0" in body
        assert source.calls == 1


async def test_failing_source_is_counted_and_the_others_keep_flowing() -> None:
    good, bad = CountingSource("good"), CountingSource("bad", fail=True)
    async with serving([good, bad], interval=0.05) as (url, cache):
        await eventually(
            lambda: errors_counted(cache, "bad") >= 3 and good.calls >= 3,
            "three failures of bad and three collections of good",
            within=30,
        )
        status, _, body = await get(f"{url}/metrics")
    assert status == 200
    assert 'exporter_collect_errors_total{source="good"} 0.0' in body
    errors = next(
        line
        for line in body.splitlines()
        if line.startswith('exporter_collect_errors_total{source="bad"}')
    )
    assert float(errors.rsplit(" ", 1)[1]) >= 3
    assert 'exporter_collect_duration_seconds{source="bad"}' in body
    assert "host_cpu_logical_processors" in body
    assert "process_resident_memory_bytes" in body


async def test_openmetrics_is_served_when_the_accept_header_asks() -> None:
    async with serving([CountingSource("one")], interval=3600.0) as (url, cache):
        await eventually(cache.ready.is_set, "the first collection", within=30)
        status, kind, body = await get(
            f"{url}/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert status == 200 and kind.startswith("application/openmetrics-text")
        assert body.endswith("# EOF\n")
        status, kind, body = await get(f"{url}/metrics")
        assert kind.startswith("text/plain; version=0.0.4") and "# EOF" not in body


def local_settings(**changes: Any) -> ExporterSettings:
    """The real host source only (fast), on a free loopback port."""
    base = ExporterSettings(listen=Listen("127.0.0.1", 0), disk=OFF, network=OFF, containers=OFF)
    return replace(base, **changes)


@asynccontextmanager
async def exporter(settings: ExporterSettings) -> AsyncIterator[RunningExporter]:
    running = await start_exporter(settings)
    try:
        yield running
    finally:
        await running.stop()


async def test_bearer_token_from_file_no_token_401_wrong_401_right_200(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("s3cret-token\n")
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(
        "exporter:\n"
        "  listen: 127.0.0.1:0\n"
        "  disk: {enabled: false}\n"
        "  network: {enabled: false}\n"
        "  containers: {enabled: false}\n"
        f"  auth: {{bearer_token_file: {tmp_path / 'token'}}}\n"
    )
    settings = load_config(config).exporter
    assert "s3cret" not in repr(settings)
    async with exporter(settings) as running:
        url = running.url
        assert (await get(url))[0] == 401
        assert (await get(url, {"Authorization": "Bearer wrong"}))[0] == 401
        status, _, body = await get(url, {"Authorization": "Bearer s3cret-token"})
        assert status == 200 and "host_cpu_usage_percent" in body
        assert (await get(url.replace("/metrics", "/healthz")))[0] == 200


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_basic_auth_no_credentials_401_wrong_401_right_200() -> None:
    settings = local_settings(auth=AuthSettings(username="prom", password="pa:ss"))
    async with exporter(settings) as running:
        url = running.url
        status, _, _ = await get(url)
        assert status == 401
        wrong = basic("prom", "nope")
        assert (await get(url, {"Authorization": wrong}))[0] == 401
        right = basic("prom", "pa:ss")
        assert (await get(url, {"Authorization": right}))[0] == 200


async def test_tls_with_a_self_signed_cert_made_in_the_test(tmp_path: Path) -> None:
    tls = self_signed(tmp_path)
    async with exporter(local_settings(tls=tls)) as running:
        assert running.url.startswith("https://")
        trusting = ssl.create_default_context(cafile=str(tls.cert_file))
        status, _, body = await get(running.url, ssl_context=trusting)
        assert status == 200 and "host_info" in body
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await get(running.url, ssl_context=ssl.create_default_context())
        with pytest.raises(aiohttp.ClientError):
            await get(running.url.replace("https://", "http://"))


async def test_unreadable_or_mismatched_tls_files_refuse_to_start_naming_them(
    tmp_path: Path,
) -> None:
    tls = self_signed(tmp_path)
    broken = TlsSettings(tls.cert_file, tmp_path / "missing.key")
    with pytest.raises(ConfigError) as caught:
        await start_exporter(local_settings(tls=broken))
    assert str(caught.value) == (
        f"command line: --tls-key-file: cannot read {tmp_path / 'missing.key'}: "
        "No such file or directory"
    )
    (tmp_path / "other").mkdir()
    other = self_signed(tmp_path / "other")
    with pytest.raises(ConfigError) as caught:
        await start_exporter(local_settings(tls=TlsSettings(tls.cert_file, other.key_file)))
    assert str(caught.value) == (
        f"command line: --tls-cert-file: cannot use {tls.cert_file} with the key "
        f"{other.key_file}: key values mismatch"
    )


async def test_absent_engine_counts_errors_and_host_metrics_still_flow(tmp_path: Path) -> None:
    fast = SourceSettings(interval=0.2, timeout=5.0)
    settings = local_settings(
        host=fast,
        containers=fast,
        docker=DockerSettings(host=f"unix://{tmp_path}/no-engine.sock", request_timeout=2.0),
    )
    async with exporter(settings) as running:
        errors = 'exporter_collect_errors_total{source="containers"}'
        body = ""

        async def errored_twice() -> bool:
            nonlocal body
            body = (await get(running.url))[2]
            line = next((ln for ln in body.splitlines() if ln.startswith(errors)), errors + " 0")
            return float(line.rsplit(" ", 1)[1]) >= 2 and "host_cpu_usage_percent" in body

        deadline = time.monotonic() + 30
        while not await errored_twice():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    assert "container_" not in body.replace("exporter_collect", "")
    assert "host_cpu_usage_percent" in body


async def test_unreachable_tcp_engine_is_an_error_not_a_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from exporter.sources.containers import ContainerSource

    source = ContainerSource(
        DockerSettings(host=f"tcp://127.0.0.1:{free_port()}", request_timeout=2.0)
    )
    try:
        with pytest.raises(Exception, match=r"(?i)connect|refused|error"):
            await asyncio.to_thread(source.collect)
    finally:
        source.close()


class HangingSource:
    """A collection that never returns until released (a dead NFS mount, say)."""

    name = "hung"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def collect(self) -> list[Metric]:
        self.calls += 1
        self.release.wait(60)
        return []


async def test_hung_source_holds_one_thread_and_the_others_keep_flowing() -> None:
    hung, good = HangingSource(), CountingSource("good")
    cache = ExpositionCache(["hung", "good"])
    schedules = [SourceSchedule(hung, 0.05, 0.1), SourceSchedule(good, 0.05, 5.0)]
    task = asyncio.create_task(run_collection(schedules, cache))
    try:
        await eventually(
            lambda: errors_counted(cache, "hung") >= 10 and good.calls >= 10,
            "ten turns of hung counted as errors while good runs",
            within=30,
        )
        # the hung collection was never started twice: later turns count as errors instead
        assert hung.calls == 1
        assert errors_counted(cache, "good") == 0
        # asyncio's shared pool is untouched, so other blocking work still runs at once
        assert await asyncio.wait_for(asyncio.to_thread(lambda: 42), 5) == 42
    finally:
        hung.release.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_cancelling_the_collection_ends_it_whenever_the_cancel_lands() -> None:
    """A stop that lands as a collection returns must still stop the loop (it once kept
    collecting, and the exporter ignored SIGTERM)."""
    sources = [CountingSource(f"s{i}") for i in range(4)]
    cache = ExpositionCache([s.name for s in sources])
    schedules = [SourceSchedule(s, 0.001, 5.0) for s in sources]
    for turn in range(50):
        task = asyncio.create_task(run_collection(schedules, cache))
        await asyncio.sleep(turn / 10_000)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=10)
        if task not in done:
            task.cancel()  # a second cancel lands on a sleep and ends it
            await asyncio.wait({task}, timeout=10)
            pytest.fail(f"turn {turn}: the collection kept running after its cancel")
