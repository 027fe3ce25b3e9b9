"""Spool bound: an InfluxDB outage longer than the spool can hold drops the oldest batches,
counts them in the collector's /metrics (`fleetpulse_samples_dropped{reason="store"}`), logs
them, keeps the spool folder under its bound, and keeps memory flat; when the store comes
back the newest data arrives and the oldest does not.

Sizes: the spool bound is 1 MiB (the smallest the config allows; the default is 256 MiB);
5 targets of 4,000 random-valued samples at a 1 s interval fill it in a few seconds. The
collector runs in this process (start_collector, the same code `fleetpulse collector` runs),
so its RSS is this process's.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from collector.service import start_collector
from collector.settings import ApiSettings, ScrapeSettings, TargetSettings
from collector.storage.influxdb import InfluxStorage
from collector.storage.settings import InfluxSettings
from fleetpulse.app.config import Config
from fleetpulse.core.listen import Listen
from fleetpulse.core.tiers import RetentionSettings
from tests.reliability.memory import rss_mb
from tests.support.influx_recorder import TOKEN, InfluxRecorder
from tests.support.servers import serve

MIB = 1024 * 1024
SPOOL_BOUND = 1 * MIB
TARGETS = 5
SAMPLES = 4000
DROPPED_BATCHES_WANTED = 10  # well past the bound, not just at its edge
MAX_GROWTH_MB = 40.0


@pytest.fixture
async def noisy_base() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        lines = [f'spool_noise{{i="{i}"}} {random.random()!r}' for i in range(SAMPLES)]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async with serve({r"/t/{index:\d+}": handler}) as base:
        yield base


async def dropped_on_metrics(api: str) -> float:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{api}/metrics", timeout=aiohttp.ClientTimeout(total=10)) as response,
    ):
        text = await response.text()
    match = re.search(r'^fleetpulse_samples_dropped_total\{reason="store"\} (\S+)$', text, re.M)
    assert match, text
    return float(match.group(1))


def spool_bytes(spool: Path) -> int:
    total = 0
    for path in spool.glob("*.lp.gz"):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue  # dropped or replayed by the collector since the glob
    return total


async def test_outage_past_the_spool_bound_drops_oldest_counts_logs_and_stays_bounded(
    tmp_path: Path,
    noisy_base: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.WARNING, logger="collector.storage.spool")
    recorder = InfluxRecorder()
    await recorder.start()
    await recorder.refuse_connections()  # down from the first write on
    spool = tmp_path / "spool"
    settings = InfluxSettings(
        url=recorder.url,
        token=TOKEN,
        flush_interval=0.2,
        max_retries=0,
        retry_interval=0.2,
        max_retry_delay=1.0,
        timeout=2.0,
        spool_max_bytes=SPOOL_BOUND,
    )
    storage = await InfluxStorage.open(settings, RetentionSettings(), spool)
    config = replace(
        Config(),
        scrape=ScrapeSettings(interval=1.0, timeout=1.0),
        api=ApiSettings(listen=Listen("127.0.0.1", 0)),
    )
    targets = [TargetSettings(f"{noisy_base}/t/{i}", f"noisy-{i}") for i in range(TARGETS)]
    started = int(time.time() * 1000)
    running = await start_collector(config.collector, storage, tmp_path, targets)
    api = f"http://{running.api_listen}"
    try:
        deadline = time.monotonic() + 60
        while storage.writer.spool.dropped_batches < 1:
            assert time.monotonic() < deadline, "the spool never reached its bound"
            await asyncio.sleep(0.2)
        rss_at_bound = rss_mb()
        largest = 0
        while storage.writer.spool.dropped_batches < DROPPED_BATCHES_WANTED:
            assert time.monotonic() < deadline, "the spool stopped dropping"
            largest = max(largest, spool_bytes(spool))
            await asyncio.sleep(0.2)
        rss_later = rss_mb()
        dropped = await dropped_on_metrics(api)
        assert dropped > 0
        assert dropped == storage.writer.spool.dropped_lines

        outage_ended = int(time.time() * 1000)
        await recorder.start()  # the store is back: the spool replays what it kept
        while spool_bytes(spool) or not recorder.writes:
            assert time.monotonic() < deadline + 60, "the spool never drained"
            await asyncio.sleep(0.2)
    finally:
        await running.stop()
        await storage.close()
        await recorder.stop()

    noise = [p.ts for p in recorder.points() if p.measurement == "spool_noise"]
    with capsys.disabled():
        print(
            f"\nspool bound: bound={SPOOL_BOUND // 1024}KiB largest_on_disk={largest // 1024}KiB "
            f"dropped_samples={dropped:.0f} dropped_batches={DROPPED_BATCHES_WANTED}+ "
            f"rss_at_bound={rss_at_bound:.1f}MB rss_later={rss_later:.1f}MB "
            f"replayed_samples={len(noise)}"
        )
    # bounded on disk: the bound, plus at most the batch being appended when it was measured
    assert largest <= SPOOL_BOUND + 256 * 1024
    drops = [r for r in caplog.records if "spool full, dropped oldest batch" in r.getMessage()]
    assert drops, "each drop is logged"
    assert "dropped_samples_total=" in drops[-1].getMessage()
    # the oldest went, the newest stayed: nothing from the first second, data up to the end
    assert noise, "the kept batches arrived"
    assert min(noise) > started + 1000
    assert max(noise) >= outage_ended - 3000
    assert rss_later - rss_at_bound < MAX_GROWTH_MB
