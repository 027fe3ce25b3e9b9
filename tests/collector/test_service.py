"""The collector service end to end in-process: real exporters and bad targets on loopback,
a real SQLite store, file_sd changes without a restart and the collector's own /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from collector.scrapers import Scrapers
from collector.service import RunningCollector, start_collector
from collector.settings import ApiSettings, ScrapeSettings, TargetSettings
from collector.storage.settings import SqliteSettings
from collector.storage.sqlite import SqliteStorage
from collector.storage.writequeue import DEFAULT_WRITE_BATCH, LINGER_WRITE_BATCH
from collector.targets import resolve_target
from exporter.service import start_exporter
from exporter.settings import ExporterSettings, SourceSettings
from fleetpulse.app.config import Config
from fleetpulse.core.httpauth import AuthSettings
from fleetpulse.core.listen import Listen
from fleetpulse.core.samples import Sample, label_value
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import RangeQuery
from fleetpulse.core.tiers import RetentionSettings
from fleetpulse.core.timeutil import now_ms
from tests.support.servers import endless_body, free_port, hanging, serve, static_exposition
from tests.support.tls import self_signed

NODE_EXPORTER = Path(__file__).resolve().parents[1] / "data" / "node_exporter.prom"
OFF = SourceSettings(enabled=False)


@asynccontextmanager
async def collector(
    tmp_path: Path, scrape: ScrapeSettings
) -> AsyncIterator[tuple[RunningCollector, SqliteStorage]]:
    store = await SqliteStorage.open(tmp_path / "metrics.db", RetentionSettings())
    config = Config(scrape=scrape, api=ApiSettings(listen=Listen("127.0.0.1", 0)))
    running = await start_collector(config.collector, store, tmp_path, rollup_every=0.2)
    try:
        yield running, store
    finally:
        await running.stop()
        await store.close()


async def ups(store: SqliteStorage, since: int) -> dict[str, list[float]]:
    result = await store.query_range(RangeQuery(Selector("up"), since, now_ms() + 1000))
    return {label_value(s.labels, "host"): [v for _, v in s.points] for s in result.series}


async def wait_for_ups(
    store: SqliteStorage, since: int, hosts: set[str], scrapes: int
) -> dict[str, list[float]]:
    """Poll until every host has `scrapes` up samples (a deadline, never a duration)."""
    seen: dict[str, list[float]] = {}
    for _ in range(600):
        seen = await ups(store, since)
        if all(len(seen.get(h, [])) >= scrapes for h in hosts):
            return seen
        await asyncio.sleep(0.05)
    pytest.fail(f"not enough scrapes within 30s: {seen}")


async def test_good_targets_with_auth_and_tls_scrape_while_bad_ones_get_up_zero(
    tmp_path: Path,
) -> None:
    tls = self_signed(tmp_path)
    secure = await start_exporter(
        ExporterSettings(
            interval=1.0, containers=OFF, auth=AuthSettings(bearer_token="tok"), tls=tls
        ),
        Listen("127.0.0.1", 0),
    )
    basic = await start_exporter(
        ExporterSettings(
            interval=1.0, containers=OFF, auth=AuthSettings(username="u", password="pw")
        ),
        Listen("127.0.0.1", 0),
    )
    routes = {
        "/node": static_exposition(NODE_EXPORTER.read_text()),
        "/hang": hanging(30),
        "/500": static_exposition("oops", status=500),
        "/garbage": static_exposition("temp{room=a} 1\n"),
        "/endless": endless_body(),
    }
    try:
        async with serve(routes) as base:

            def t(url: str, host: str, **extra: Any) -> TargetSettings:
                return TargetSettings(url=url, host=host, **extra)

            targets = (
                t(secure.url, "secure", bearer_token="tok", tls_ca_file=tls.cert_file),
                t(basic.url, "basic", basic_auth_username="u", basic_auth_password="pw"),
                t(secure.url, "wrong-token", bearer_token="nope", tls_ca_file=tls.cert_file),
                t(secure.url, "untrusted", bearer_token="tok"),
                t(f"{base}/node", "node"),
                t(f"{base}/hang", "hang"),
                t(f"{base}/500", "http-500"),
                t(f"{base}/garbage", "garbage"),
                t(f"{base}/endless", "endless"),
                t(f"http://127.0.0.1:{free_port()}/metrics", "refused"),
            )
            scrape = ScrapeSettings(interval=0.5, timeout=0.4, targets=targets)
            since = now_ms()
            async with collector(tmp_path, scrape) as (running, store):
                good = {"secure", "basic", "node"}
                bad = {t.host for t in targets} - good
                seen = await wait_for_ups(store, since, good | bad, 4)
                for host in good:
                    assert set(seen[host]) == {1.0}, host
                for host in bad:
                    assert set(seen[host]) == {0.0}, host
                # real exporter metrics and node_exporter's series arrived, labelled
                cpu = await store.query_latest(Selector("host_cpu_logical_processors"), since)
                assert {label_value(v.labels, "host") for v in cpu} == {"secure", "basic"}
                node = await store.query_latest(Selector("node_cpu_seconds_total"), since)
                assert node and all(label_value(v.labels, "job") == "fleetpulse" for v in node)
                own = await fetch_text(f"http://{running.api_listen}/metrics")
    finally:
        await secure.stop()
        await basic.stop()
    assert 'fleetpulse_scrapes_total{result="down"}' in own
    assert 'fleetpulse_scrapes_total{result="up"}' in own
    assert "fleetpulse_samples_written_total" in own
    assert "fleetpulse_write_queue_samples" in own
    assert 'fleetpulse_samples_dropped_total{reason="queue_full"} 0.0' in own
    assert "fleetpulse_spool_bytes 0.0" in own
    assert "fleetpulse_storage_write_seconds_count" in own
    assert "fleetpulse_targets 10.0" in own


async def fetch_text(url: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response,
    ):
        assert response.status == 200
        return await response.text()


async def test_file_sd_targets_come_and_go_without_a_restart(tmp_path: Path) -> None:
    sd = tmp_path / "targets"
    sd.mkdir()
    async with serve({"/metrics": static_exposition("temp 1\n")}) as base:
        (sd / "a.yaml").write_text(f"- url: {base}/metrics\n  host: from-file-a\n")
        scrape = ScrapeSettings(
            interval=0.5,
            timeout=0.4,
            file_sd=(str(sd / "*.yaml"), str(sd / "*.json")),
            file_sd_refresh=0.1,
        )
        async with collector(tmp_path, scrape) as (running, store):
            assert running.discovered_targets == 1
            since = now_ms()
            await wait_for_ups(store, since, {"from-file-a"}, 2)
            port = base.rsplit(":", 1)[1]
            (sd / "b.json").write_text(
                f'[{{"targets": ["127.0.0.1:{port}"], "labels": {{"host": "from-file-b"}}}}]'
            )
            await wait_for_ups(store, now_ms(), {"from-file-b"}, 2)
            (sd / "a.yaml").unlink()
            for _ in range(600):
                if [t.host for t in running.scrapers.targets] == ["from-file-b"]:
                    break
                await asyncio.sleep(0.05)
            assert [t.host for t in running.scrapers.targets] == ["from-file-b"]
            # a broken edit keeps the last good list
            (sd / "b.json").write_text("[{")
            await asyncio.sleep(0.3)  # a few refreshes; the assertion is that nothing changed
            assert [t.host for t in running.scrapers.targets] == ["from-file-b"]


async def test_a_shard_scrapes_only_its_share(tmp_path: Path) -> None:
    async with serve({"/metrics": static_exposition("temp 1\n")}) as base:
        targets = tuple(
            TargetSettings(url=f"{base}/metrics?n={i}", host=f"h{i}") for i in range(12)
        )
        scrape = ScrapeSettings(interval=0.5, timeout=0.4, targets=targets)
        hosts = []
        for index in range(3):
            store = await SqliteStorage.open(tmp_path / f"{index}.db", RetentionSettings())
            config = Config(scrape=scrape, api=ApiSettings(listen=Listen("127.0.0.1", 0)))
            running = await start_collector(config.collector, store, tmp_path, shard=(index, 3))
            hosts.append(sorted(t.host for t in running.scrapers.targets))
            await running.stop()
            await store.close()
    assert sorted(h for shard in hosts for h in shard) == sorted(t.host for t in targets)


async def test_stop_writes_what_is_still_queued(tmp_path: Path) -> None:
    async with collector(tmp_path, ScrapeSettings()) as (running, store):
        t = now_ms()
        for i in range(5):
            await running.scrapers.write(
                [
                    Sample("queued", (("host", "q"),), float(j), t - 10_000 + j)
                    for j in range(i * 100, i * 100 + 100)
                ]
            )
        await running.stop()
        (latest,) = await store.query_latest(Selector("queued"), 0)
        assert latest.value == 499.0
        result = await store.query_range(RangeQuery(Selector("queued"), t - 20_000, t))
        assert len(result.series[0].points) == 500


async def test_the_collector_lingers_only_while_a_target_is_scraped_twice_within_it(
    tmp_path: Path,
) -> None:
    async with serve({"/metrics": static_exposition("temp 1\n")}) as base:
        store = await SqliteStorage.open(
            tmp_path / "metrics.db", RetentionSettings(), flush_interval=2.0
        )
        collector = Scrapers(store, CollectorRegistry())
        scrape = ScrapeSettings(interval=15.0, timeout=5.0)
        slow = resolve_target(TargetSettings(url=f"{base}/metrics", host="slow"), scrape)
        try:
            await collector.start([slow])
            assert store.queue.linger == 0.0, "every 15 s: one scrape per 2 s write"

            fast = resolve_target(
                TargetSettings(url=f"{base}/metrics?fast", host="fast"),
                ScrapeSettings(interval=1.0, timeout=0.5),
            )
            collector.set_targets([slow, fast])
            assert store.queue.linger == 2.0
            assert store.queue.batch == LINGER_WRITE_BATCH

            collector.set_targets([slow])
            assert store.queue.linger == 0.0
            assert store.queue.batch == DEFAULT_WRITE_BATCH
        finally:
            await collector.stop()
            await store.close()


async def test_lingering_writes_still_reach_the_store_and_a_stop_writes_the_rest(
    tmp_path: Path,
) -> None:
    answered = 0

    async def counting(request: web.Request) -> web.Response:
        nonlocal answered
        answered += 1
        return web.Response(text="temp 1\n", content_type="text/plain")

    async with serve({"/metrics": counting}) as base:
        targets = (TargetSettings(url=f"{base}/metrics", host="fast"),)
        scrape = ScrapeSettings(interval=0.5, timeout=0.4, targets=targets)
        # as the factory opens it: lingering up to storage.sqlite.flush_interval
        store = await SqliteStorage.open(
            tmp_path / "metrics.db",
            RetentionSettings(),
            flush_interval=SqliteSettings().flush_interval,
        )
        config = Config(scrape=scrape, api=ApiSettings(listen=Listen("127.0.0.1", 0)))
        running = await start_collector(config.collector, store, tmp_path)
        try:
            assert store.queue.linger == SqliteSettings().flush_interval
            since = now_ms() - 1000
            await wait_for_ups(store, since, {"fast"}, 3)
        finally:
            await running.stop()
        stored = (await ups(store, since))["fast"]
        await store.close()
    # a scrape cut short by the stop is answered but never finished: at most one
    assert answered - 1 <= len(stored) <= answered, "every finished scrape was written"
