"""FleetPulse alerting on itself, end to end in one process as `fleetpulse up` composes it: a
target served on loopback, the real collector scraping it and its own /metrics into a real
SQLite file, the alert engine on the built-in self-monitoring rules (copied beside a fast
host-down rule), and notifications through Apprise to a local HTTP recorder.

The store is made full for real (`tests/support/sqlite_full`: SQLITE_FULL from SQLite
itself), then freed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from alerting.api import add_alert_routes
from alerting.engine import AlertEngine
from alerting.settings import AlertingSettings, ChannelSettings, HeartbeatSettings
from collector.service import SELF_JOB, RunningCollector, start_collector
from collector.settings import ApiSettings, CollectorSettings, ScrapeSettings, TargetSettings
from collector.storage.sqlite import SqliteStorage
from fleetpulse.core.defaults import BUILTIN_RULES
from fleetpulse.core.listen import Listen
from fleetpulse.core.samples import make_labels
from fleetpulse.core.selector import Selector
from fleetpulse.core.tiers import RetentionSettings
from tests.alerting.recorders import HttpRecorder
from tests.support.disks import Ext4Disk, SmallDisk, ext4_disk, small_disk
from tests.support.poll import eventually
from tests.support.servers import free_port, serve, static_exposition
from tests.support.sqlite_full import fill, free

HOST_DOWN = """
groups:
  - name: hosts
    interval: 250ms
    rules:
      - alert: HostDown
        metric: up
        reduce: last
        window: 2s
        op: "=="
        threshold: 0
        severity: critical
        for: 1s
"""


@dataclass
class World:
    storage: SqliteStorage
    engine: AlertEngine
    collector: RunningCollector

    @property
    def api(self) -> str:
        return f"http://{self.collector.api_listen}"

    async def get(self, path: str) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(self.api + path) as answer,
        ):
            doc: dict[str, Any] = await answer.json()
        return doc


def json_channel(recorder: HttpRecorder, name: str) -> ChannelSettings:
    port = recorder.base.rsplit(":", 1)[1]
    return ChannelSettings(name, (f"json://127.0.0.1:{port}/{name}",))


@asynccontextmanager
async def world(
    tmp_path: Path,
    settings: AlertingSettings,
    down: tuple[str, ...] = (),
    data: Path | None = None,
    targets: Sequence[TargetSettings] = (),
) -> AsyncIterator[World]:
    """web-1 answers; each host in `down` is a target nothing listens for, and `targets` are
    scraped too. The store and the engine's state share `data`, as they share `fleetpulse
    up`'s --data-dir."""
    data = tmp_path / "data" if data is None else data
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(BUILTIN_RULES / "fleetpulse.yaml", rules)
    (rules / "hosts.yaml").write_text(HOST_DOWN)
    settings = AlertingSettings(
        rules=(rules,),
        interval=0.25,
        channels=settings.channels,
        default_channels=settings.default_channels,
        fallback_channels=settings.fallback_channels,
        notify_retries=settings.notify_retries,
        notify_backoff=settings.notify_backoff,
        notify_timeout=settings.notify_timeout,
    )
    async with serve({"/metrics": static_exposition("host_cpu_usage_percent 10\n")}) as base:
        storage = await SqliteStorage.open(data / "metrics.db", RetentionSettings())
        registry = CollectorRegistry(auto_describe=True)
        engine = AlertEngine(
            settings,
            registry=registry,
            self_labels=make_labels({"host": "fp", "job": SELF_JOB}),
        )
        engine.load()
        collector = await start_collector(
            CollectorSettings(
                scrape=ScrapeSettings(interval=0.25, timeout=0.2),
                api=ApiSettings(listen=Listen("127.0.0.1", 0)),
            ),
            storage,
            data,
            [
                TargetSettings(url=f"{base}/metrics", host="web-1"),
                *(TargetSettings(url=f"http://127.0.0.1:{free_port()}/", host=h) for h in down),
                *targets,
            ],
            routes=[add_alert_routes],
            registry=registry,
            scrape_self="fp",
        )
        task = asyncio.create_task(engine.run(storage, data))
        try:
            yield World(storage, engine, collector)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await collector.stop()
            await storage.close()


def alerts_about(recorder: HttpRecorder, words: str) -> list[str]:
    return [r.text for r in recorder.received if words in r.text]


async def test_a_full_store_alerts_on_itself_holds_host_alerts_and_recovers(
    tmp_path: Path, webhook: HttpRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    hook = json_channel(webhook, "ops")
    settings = AlertingSettings(channels=(hook,), default_channels=("ops",))
    async with world(tmp_path, settings) as w:

        async def stored_up() -> bool:
            found = await w.storage.query_latest(Selector("up"), 0)
            return {dict(v.labels)["job"] for v in found} == {"fleetpulse", SELF_JOB}

        await eventually(stored_up, what="both targets' up stored (the self-scrape too)")
        await eventually(lambda: w.engine.cycles >= 8, what="evaluations before the fill")

        await fill(w.storage)
        await eventually(
            lambda: alerts_about(webhook, "cannot write to its store (disk_full)"),
            what="the store alert delivered",
        )
        health = await w.get("/healthz")
        assert health["status"] == "degraded"
        assert health["store"]["write"]["cause"] == "disk_full"
        assert "database or disk is full" in health["store"]["write"]["error"]
        assert "free space" in health["store"]["write"]["error"]
        await asyncio.sleep(3)  # past HostDown's window + for: the stored `up` is all stale now
        hosts = await w.get("/api/v1/hosts")
        assert hosts["store"]["status"] == "degraded"
        # the store, not the hosts, is failing: none is called down (each is `null`, unknown,
        # unless one of its `up` samples still fit into a page the full file freed, which
        # then truthfully says it answers)
        ups = {h["host"]: h["up"] for h in hosts["hosts"]}
        assert set(ups) == {"web-1", "fp"} and False not in ups.values(), ups
        logged = caplog.text
        assert "database or disk is full" in logged and "no transaction is active" not in logged
        assert "rules over its data hold their state cause=disk_full" in logged

        await free(w.storage)
        await eventually(
            lambda: any(
                "RESOLVED" in t for t in alerts_about(webhook, "FleetPulseStoreWriteFailing")
            ),
            what="the store alert resolved",
        )

        async def healthy() -> bool:
            return await w.get("/healthz") == {"status": "ok"}

        await eventually(healthy, what="healthz ok again")
        # released once HostDown's window is past the outage and writes held for 5 s
        await eventually(
            lambda: "rules evaluate again" in caplog.text, what="rules released", within=60
        )

        async def hosts_up() -> bool:
            return all(h["up"] is True for h in (await w.get("/api/v1/hosts"))["hosts"])

        await eventually(hosts_up, what="hosts up again")

    # one alert for one failure, fired and resolved; no host alert, no other transition
    assert not alerts_about(webhook, "HostDown")
    store_alerts = alerts_about(webhook, "FleetPulseStoreWriteFailing")
    assert len(store_alerts) == 2, store_alerts
    assert not alerts_about(webhook, "FleetPulseSamplesDropped")
    assert len(webhook.received) == 2, [r.text for r in webhook.received]


@dataclass(frozen=True)
class DiskFault:
    """A disk failing under the whole data folder, the store's file and the engine's state
    alike (`tests/support/disks`)."""

    cause: str
    words: str  # what /healthz quotes from SQLite or the kernel
    advice: str
    disk: Callable[[Path], AbstractContextManager[SmallDisk | Ext4Disk]]

    @staticmethod
    def break_(disk: SmallDisk | Ext4Disk) -> None:
        disk.fill() if isinstance(disk, SmallDisk) else disk.fail()

    @staticmethod
    def fix(disk: SmallDisk | Ext4Disk) -> None:
        disk.free() if isinstance(disk, SmallDisk) else disk.repair()


FAULTS = {
    "full": DiskFault("disk_full", "database or disk is full", "free space", small_disk),
    "read_only": DiskFault("read_only", "disk I/O error", "remount it read-write", ext4_disk),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
async def test_a_failing_disk_alerts_once_calls_no_host_down_and_recovers(
    tmp_path: Path, webhook: HttpRecorder, caplog: pytest.LogCaptureFixture, fault: DiskFault
) -> None:
    """A real file system fails under the store and the alert state: the self-alert names
    the cause and is delivered (the engine notifies from memory while it cannot save), no
    host alert fires, and once the disk is back everything resolves by itself."""
    caplog.set_level(logging.INFO)
    settings = AlertingSettings(channels=(json_channel(webhook, "ops"),), default_channels=("ops",))
    with fault.disk(tmp_path / "disk") as disk:
        async with world(tmp_path, settings, data=disk.mountpoint) as w:
            await eventually(lambda: w.engine.cycles >= 8, what="evaluations before the fault")

            fault.break_(disk)
            await eventually(
                lambda: alerts_about(webhook, f"cannot write to its store ({fault.cause})"),
                what="the store alert delivered",
            )
            write = (await w.get("/healthz"))["store"]["write"]
            assert write["cause"] == fault.cause
            assert fault.words in write["error"] and fault.advice in write["error"], write
            hosts = await w.get("/api/v1/hosts")
            assert False not in {h["up"] for h in hosts["hosts"]}, hosts
            assert "alert state not saved" in caplog.text  # said, and the engine went on

            fault.fix(disk)
            await eventually(
                lambda: any(
                    "RESOLVED" in t for t in alerts_about(webhook, "FleetPulseStoreWriteFailing")
                ),
                what="the store alert resolved",
                within=60,
            )

            async def healthy_and_up() -> bool:
                hosts = await w.get("/api/v1/hosts")
                return await w.get("/healthz") == {"status": "ok"} and all(
                    h["up"] is True for h in hosts["hosts"]
                )

            await eventually(healthy_and_up, what="healthz ok and hosts up again", within=30)
            assert "alert state saved again" in caplog.text

    # one line when the outage starts and one when it ends, not one per failed batch
    for what in ("storage write failed", "alert events not written"):
        said = [r.getMessage() for r in caplog.records if r.getMessage().startswith(what)]
        assert len(said) <= 2, said
    assert any(m.startswith("storage write failed") for m in caplog.messages)

    assert not alerts_about(webhook, "HostDown")
    assert len(alerts_about(webhook, "FleetPulseStoreWriteFailing")) == 2  # fired, resolved
    assert len(webhook.received) == 2, [r.text for r in webhook.received]


async def test_an_alert_about_a_dead_channel_reaches_the_fallback_and_resolves_when_it_heals(
    tmp_path: Path, webhook: HttpRecorder
) -> None:
    """The channel's service answers 503; three hosts go down, and their alerts cannot get
    through it. The alert about the channel goes to the fallback. Then the service and the
    hosts come back: the hosts' resolved messages get through, and the channel alert
    resolves by itself."""
    webhook.failing.add("/dead")
    dead = json_channel(webhook, "dead")
    fallback = json_channel(webhook, "fallback")
    settings = AlertingSettings(
        channels=(dead, fallback),
        default_channels=("dead",),
        fallback_channels=("fallback",),
        notify_retries=0,
        notify_backoff=0.1,
    )
    sick = True

    async def metrics(_: web.Request) -> web.Response:
        if sick:
            return web.Response(status=503)
        return web.Response(text="host_cpu_usage_percent 10\n")

    async with serve({"/metrics": metrics}) as base:
        db = [TargetSettings(url=f"{base}/metrics?db={i}", host=f"db-{i}") for i in (1, 2, 3)]
        async with world(tmp_path, settings, targets=db):
            await eventually(
                lambda: alerts_about(webhook, "Notification channel dead failed its last 3"),
                what="the channel alert at the fallback",
                within=30,
            )
            webhook.failing.clear()
            sick = False
            await eventually(
                lambda: [r for r in webhook.on("/fallback") if "RESOLVED" in r.text],
                what="the channel alert resolved",
                within=30,
            )

            def hosts_resolved() -> int:
                healed = [r.text for r in webhook.on("/dead")]
                return sum("RESOLVED" in t and "HostDown" in t for t in healed)

            # the first one that gets through resolves the channel alert; the others may
            # still be on their way then
            await eventually(lambda: hosts_resolved() >= 3, what="every host's resolved")
    on_fallback = webhook.on("/fallback")
    assert all("FleetPulseChannelFailing" in r.text for r in on_fallback)  # only its own alert
    assert len(on_fallback) == 2, [r.text for r in on_fallback]  # fired, resolved
    assert len([r for r in webhook.refused if "HostDown" in r.text]) == 3
    assert hosts_resolved() == 3, [r.text for r in webhook.on("/dead")]


async def run_engine(settings: AlertingSettings, store: SqliteStorage, data: Path) -> Any:
    engine = AlertEngine(settings, self_labels=make_labels({"host": "fp", "job": SELF_JOB}))
    engine.load()
    return engine, asyncio.create_task(engine.run(store, data))


async def stop_engine(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def heartbeat_settings(webhook: HttpRecorder, every: float, rules: Path) -> AlertingSettings:
    return AlertingSettings(
        rules=(rules,),
        interval=0.25,
        channels=(json_channel(webhook, "beat"),),
        heartbeat=HeartbeatSettings(("beat",), every),
    )


@pytest.fixture
def no_rules(tmp_path: Path) -> Path:
    """One rule over a metric nobody sends: cycles run, nothing fires."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "quiet.yaml").write_text(HOST_DOWN.replace("metric: up", "metric: nothing_here"))
    return rules


async def test_the_heartbeat_arrives_every_interval_and_never_while_the_engine_is_down(
    tmp_path: Path, webhook: HttpRecorder, store: SqliteStorage, no_rules: Path
) -> None:
    settings = heartbeat_settings(webhook, 1.0, no_rules)
    _, task = await run_engine(settings, store, tmp_path / "data")
    await eventually(lambda: len(webhook.received) >= 2, what="two heartbeats")
    await stop_engine(task)
    stopped = time.monotonic()
    while_up = len(webhook.received)
    await asyncio.sleep(2.5)  # down for more than two intervals
    restarted = time.monotonic()
    _, task = await run_engine(settings, store, tmp_path / "data")
    try:
        await eventually(lambda: len(webhook.received) >= while_up + 2, what="beats again")
    finally:
        await stop_engine(task)
    beats = webhook.on("/beat")
    assert all("FleetPulse is alive" in b.text for b in beats)
    assert not [b for b in beats if stopped < b.at < restarted]  # none while down
    assert beats[while_up].at >= restarted  # overdue after the restart: sent at once


async def test_the_heartbeat_clock_survives_a_restart(
    tmp_path: Path, webhook: HttpRecorder, store: SqliteStorage, no_rules: Path
) -> None:
    settings = heartbeat_settings(webhook, 3600.0, no_rules)
    _, task = await run_engine(settings, store, tmp_path / "data")
    await eventually(lambda: len(webhook.received) == 1, what="the first heartbeat")
    await stop_engine(task)
    engine, task = await run_engine(settings, store, tmp_path / "data")
    try:
        await eventually(lambda: engine.cycles >= 8, what="evaluations after the restart")
        await eventually(lambda: engine.heartbeat_ms is not None, what="the saved clock")
    finally:
        await stop_engine(task)
    assert len(webhook.received) == 1  # the next one is due an hour after the first
