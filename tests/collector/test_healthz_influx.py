"""InfluxDB store failures shown end to end (issue #15): the recording InfluxDB v2 API, the
real InfluxDB adapter opened as `open_storage` opens it, the real collector scraping a target
on loopback, its HTTP API, and `fleetpulse status` run as a user runs it.

Each failure an operator must act on (a refused token, a token without write access, a
missing bucket, a rate limit, InfluxDB gone) must show in `/healthz` as "degraded" with its
cause and what to do, in the hosts answer without calling any host down, and in `fleetpulse
status`; once InfluxDB accepts again, the spooled writes arrive once and /healthz is ok. A
batch too large (413) is split until InfluxDB takes it: nothing is lost, so /healthz stays ok.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collector.service import RunningCollector, start_collector
from collector.settings import ApiSettings, CollectorSettings, ScrapeSettings, TargetSettings
from collector.storage.factory import open_storage
from collector.storage.influxdb import InfluxStorage
from collector.storage.settings import InfluxSettings, StorageSettings
from fleetpulse.core.listen import Listen
from fleetpulse.core.tiers import RetentionSettings
from fleetpulse.core.timeutil import now_ms
from tests.support.cli import run_cli
from tests.support.influx_recorder import TOKEN, CsvTable, InfluxRecorder, series_table
from tests.support.poll import eventually
from tests.support.servers import serve, static_exposition

BUCKET = "fleetpulse"
EXPOSITION = "host_cpu_usage_percent 10\nhost_memory_usage_percent 20\n"
_MEASUREMENT = re.compile(r'r\._measurement == "([^"]+)"')


def influx_settings(url: str) -> StorageSettings:
    """Short intervals and small batches, so failures show and heal within a second."""
    return StorageSettings(
        backend="influxdb",
        influxdb=InfluxSettings(
            url=url,
            token=TOKEN,
            bucket=BUCKET,
            timeout=2.0,
            batch_size=50,
            flush_interval=0.05,
            max_retries=1,
            retry_interval=0.02,
            max_retry_delay=0.2,
        ),
    )


def latest_points(recorder: InfluxRecorder) -> Callable[[str], list[CsvTable]]:
    """Answers the raw bucket's Flux queries from what the recorder stored: the newest point
    of each series of the measurement asked for (all the hosts answer and `status` need)."""

    def answer(text: str) -> list[CsvTable]:
        found = _MEASUREMENT.search(text)
        if found is None or f'from(bucket: "{BUCKET}")' not in text:
            return []
        newest: dict[tuple[tuple[str, str], ...], tuple[int, float]] = {}
        for point in recorder.points(BUCKET):
            key = tuple(sorted(point.tags.items()))
            value = point.fields.get("value")
            if point.measurement == found.group(1) and isinstance(value, float):
                newest[key] = max(newest.get(key, (0, 0.0)), (point.ts, value))
        return [
            series_table(found.group(1), dict(key), [ts_value]) for key, ts_value in newest.items()
        ]

    return answer


@dataclass
class World:
    recorder: InfluxRecorder
    storage: InfluxStorage
    collector: RunningCollector

    @property
    def api(self) -> str:
        return f"http://{self.collector.api_listen}"

    async def get(self, path: str) -> tuple[int, dict[str, Any]]:
        timeout = aiohttp.ClientTimeout(5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(self.api + path) as answer,
        ):
            doc: dict[str, Any] = await answer.json()
            return answer.status, doc

    def up_times(self) -> list[int]:
        return [p.ts for p in self.recorder.points(BUCKET) if p.measurement == "up"]


@asynccontextmanager
async def world(recorder: InfluxRecorder, tmp_path: Path) -> AsyncIterator[World]:
    recorder.answer_queries(latest_points(recorder))
    async with serve({"/metrics": static_exposition(EXPOSITION)}) as base:
        storage = await open_storage(influx_settings(recorder.url), RetentionSettings(), tmp_path)
        assert isinstance(storage, InfluxStorage)
        try:
            collector = await start_collector(
                CollectorSettings(
                    scrape=ScrapeSettings(interval=0.25, timeout=0.2),
                    api=ApiSettings(listen=Listen("127.0.0.1", 0)),
                ),
                storage,
                tmp_path,
                [TargetSettings(url=f"{base}/metrics", host="web-1")],
            )
            try:
                yield World(recorder, storage, collector)
            finally:
                await collector.stop()
        finally:
            await storage.close()


async def break_influx(recorder: InfluxRecorder, failure: str) -> None:
    if failure == "401":
        recorder.token = "a-rotated-token"
    elif failure == "403":
        recorder.fail_writes(403)
    elif failure == "404":  # only another bucket exists
        recorder.buckets["x"] = {"id": "x", "orgID": "o", "name": "other", "retentionRules": []}
    elif failure == "429":  # until healed, each answer asks for a second's pause
        recorder.fail_writes(429, retry_after="1")
    else:
        await recorder.refuse_connections()


async def heal_influx(recorder: InfluxRecorder, failure: str) -> None:
    if failure == "unreachable":
        await recorder.start()  # the same port again
    recorder.token = TOKEN
    recorder.buckets.clear()
    recorder.heal()


async def ups(w: World) -> list[bool | None]:
    """web-1's `up` in the hosts answer, which must never call it down for the store's sake."""
    status, doc = await w.get("/api/v1/hosts")
    assert status == 200, doc
    found = [h["up"] for h in doc["hosts"]]
    assert False not in found, doc
    return found


async def hosts_while_reads_work(w: World, cause: str) -> None:
    """The hosts answer says the store is degraded; web-1 turns unknown, not down, once its
    newest stored `up` is stale, and `status` shows it so."""
    status, doc = await w.get("/api/v1/hosts")
    assert status == 200, doc
    assert doc["store"]["status"] == "degraded" and doc["store"]["write"]["cause"] == cause

    async def unknown() -> bool:
        return await ups(w) == [None]

    await eventually(unknown, what="web-1 unknown: its fresh samples wait in the spool")
    code, out, err = await run_cli("status", "--api", w.api)
    assert code == 0, (out, err)
    assert f"store DEGRADED: writes failing ({cause})" in out, out
    assert re.search(r"^web-1\s+\?\s", out, re.MULTILINE), out


async def hosts_while_reads_fail(w: World, cause: str) -> None:
    """Nothing can be listed, but the error still carries the store's health, and `status`
    leads with it instead of calling anyone down."""
    status, doc = await w.get("/api/v1/hosts")
    assert status == 503 and "hosts" not in doc, doc
    assert doc["store"]["write"]["cause"] == doc["store"]["read"]["cause"] == cause, doc
    code, out, err = await run_cli("status", "--api", w.api)
    assert code == 1 and out == "", (out, err)
    assert f"store DEGRADED: writes failing ({cause})" in err, err
    assert f"store DEGRADED: reads failing ({cause})" in err, err


@pytest.mark.parametrize(
    ("failure", "cause", "hint", "reads_fail"),
    [
        ("401", "unauthorized", "check storage.influxdb.token", True),
        ("403", "forbidden", "give it write access", False),
        ("404", "bucket_not_found", "run `fleetpulse influx setup`", False),
        ("429", "rate_limited", "Retry-After says", False),
        ("unreachable", "unreachable", "storage.influxdb.url", True),
    ],
)
async def test_an_influxdb_failure_is_named_by_healthz_hosts_and_status_until_it_heals(
    recorder: InfluxRecorder,
    tmp_path: Path,
    failure: str,
    cause: str,
    hint: str,
    reads_fail: bool,
) -> None:
    async with world(recorder, tmp_path) as w:

        async def host_up() -> bool:
            return await ups(w) == [True]

        await eventually(host_up, what="web-1 stored and up")
        assert await w.get("/healthz") == (200, {"status": "ok"})

        await break_influx(recorder, failure)
        broken_ms = now_ms()

        async def degraded() -> dict[str, Any] | None:
            status, doc = await w.get("/healthz")
            assert status == 200, doc  # degraded is no reason to restart FleetPulse
            # a failing read (a query of the hosts answer) may show first; wait for the writes
            return doc if "write" in doc.get("store", {}) else None

        health = await eventually(degraded, what=f"/healthz degraded by {failure}")
        assert health["status"] == "degraded" and health["store"]["status"] == "degraded"
        write = health["store"]["write"]
        assert write["cause"] == cause, health
        assert hint in write["error"], health
        assert TOKEN not in str(health) and "a-rotated-token" not in str(health)

        if reads_fail:
            await hosts_while_reads_fail(w, cause)
        else:
            await hosts_while_reads_work(w, cause)

        await heal_influx(recorder, failure)
        healed_ms = now_ms()

        async def ok() -> bool:
            return await w.get("/healthz") == (200, {"status": "ok"})

        await eventually(ok, what="/healthz ok again")

        def caught_up() -> bool:
            spooled = w.storage.write_stats().spooled_samples
            return spooled == 0 and any(broken_ms < ts < healed_ms for ts in w.up_times())

        await eventually(caught_up, what="the spooled writes replayed")
        await eventually(host_up, what="web-1 up again")

    lines = recorder.lines(BUCKET)
    assert len(lines) == len(set(lines)), "a spooled write arrived twice"
    assert w.storage.write_stats().rejected_samples == 0


async def test_a_batch_too_large_is_split_and_healthz_stays_ok_as_everything_arrives(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    async with world(recorder, tmp_path) as w:
        await eventually(w.up_times, what="the first scrape stored")
        recorder.max_lines = 2  # a scrape's batch holds more lines: InfluxDB answers 413
        split_from = len(recorder.writes)
        answers: list[tuple[int, dict[str, Any]]] = []

        async def split_parts_stored() -> bool:
            answers.append(await w.get("/healthz"))
            return len(recorder.writes) >= split_from + 10

        await eventually(split_parts_stored, what="split batches stored")
        recorder.max_lines = None
        split = recorder.writes[split_from:]
        refused = recorder.write_attempts - len(recorder.writes)
        stats = w.storage.write_stats()

    # split until InfluxDB took every part: nothing waited, nothing was lost, so ok is true
    assert refused > 0, "no batch was too large: the test proves nothing"
    assert all(len(write.lines) <= 2 for write in split)
    assert all(answer == (200, {"status": "ok"}) for answer in answers), answers
    assert (stats.rejected_samples, stats.spooled_samples) == (0, 0)
    lines = recorder.lines(BUCKET)
    assert len(lines) == len(set(lines))
