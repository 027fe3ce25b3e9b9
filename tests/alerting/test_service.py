"""The alert engine end to end: a synthetic exporter whose value the test sets, the real
collector scraping it into a real SQLite file, the engine evaluating it, and notifications
arriving through Apprise at a local HTTP recorder (json://, Slack, Discord) and a local SMTP
server (mailto://). Intervals are short (`for: 2s`, cooldown 5s); tests poll with deadlines.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from alerting.api import add_alert_routes
from alerting.engine import AlertEngine
from alerting.settings import AlertingSettings, ChannelSettings
from alerting.state import FIRING, PENDING
from collector.service import RunningCollector, start_collector
from collector.settings import ApiSettings, ScrapeSettings, TargetSettings
from collector.storage.sqlite import SqliteStorage
from fleetpulse.app.config import Config
from fleetpulse.core.listen import Listen
from fleetpulse.core.storage import ALERT_EVENTS
from fleetpulse.core.tiers import RetentionSettings
from tests.alerting.recorders import HttpRecorder, SmtpRecorder
from tests.support.poll import eventually
from tests.support.servers import free_port, serve

THRESHOLDS = """
thresholds:
  defaults:
    cpu: {warning: 70, critical: 85}
  hosts:
    "db-*": {cpu: {warning: 50, critical: 60}}
"""


def cpu_rule(*, for_: str = "2s", cooldown: str = "5s", notify: str = "") -> str:
    return f"""
groups:
  - name: e2e
    interval: 250ms
    rules:
      - alert: CpuHigh
        metric: host_cpu_usage_percent
        reduce: last
        window: 2s
        op: ">"
        threshold: cpu
        for: {for_}
        cooldown: {cooldown}
        {notify}
        annotations:
          summary: "CPU on {{{{ labels.host }}}} at {{{{ value }}}}% (> {{{{ threshold }}}}%)"
"""


@dataclass
class Pipeline:
    values: dict[str, float]
    storage: SqliteStorage
    engine: AlertEngine
    collector: RunningCollector
    rules_dir: Path
    data_dir: Path
    settings: AlertingSettings
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"http://{self.collector.api_listen}"

    def instance(self, host: str, severity: str) -> Any:
        for inst in self.engine.instances.values():
            if dict(inst.labels).get("host") == host and inst.severity == severity:
                return inst
        return None

    def start_engine(self) -> AlertEngine:
        engine = AlertEngine(self.settings)
        engine.load()
        self.engine = engine
        self.tasks.append(asyncio.create_task(engine.run(self.storage, self.data_dir)))
        return engine

    async def stop_engine(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def events(self) -> list[Any]:
        now = int(time.time() * 1000)
        return await self.storage.query_events(ALERT_EVENTS, now - 600_000, now + 1000)


@asynccontextmanager
async def pipeline(
    tmp_path: Path,
    rules: str,
    channels: tuple[ChannelSettings, ...],
    hosts: tuple[str, ...] = ("web-1",),
    **settings: Any,
) -> AsyncIterator[Pipeline]:
    values = dict.fromkeys(hosts, 10.0)

    def exposition(host: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(text=f"host_cpu_usage_percent {values[host]}\n")

        return handler

    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "e2e.yaml").write_text(rules)
    (rules_dir / "thresholds.yaml").write_text(THRESHOLDS)
    data_dir = tmp_path / "data"
    alerting = AlertingSettings(
        rules=(rules_dir,),
        interval=0.25,
        channels=channels,
        default_channels=tuple(c.name for c in channels),
        notify_timeout=20.0,
        **settings,
    )
    async with serve({f"/{h}/metrics": exposition(h) for h in hosts}) as base:
        storage = await SqliteStorage.open(tmp_path / "metrics.db", RetentionSettings())
        config = Config(
            scrape=ScrapeSettings(interval=0.25, timeout=0.2),
            api=ApiSettings(listen=Listen("127.0.0.1", 0)),
        )
        targets = [TargetSettings(url=f"{base}/{h}/metrics", host=h) for h in hosts]
        collector = await start_collector(
            config.collector, storage, data_dir, targets, routes=[add_alert_routes]
        )
        line = Pipeline(
            values, storage, AlertEngine(alerting), collector, rules_dir, data_dir, alerting
        )
        line.start_engine()
        try:
            yield line
        finally:
            await line.stop_engine()
            await collector.stop()
            await storage.close()


def json_channel(recorder: HttpRecorder, name: str = "hook") -> ChannelSettings:
    port = recorder.base.rsplit(":", 1)[1]
    return ChannelSettings(name, (f"json://127.0.0.1:{port}/{name}",))


def fetch(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def chat_plugins_to_recorder(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the Slack and Discord plugins' base URLs at the recorder (set once it is up)."""
    from alerting.settings import load_apprise

    load_apprise()
    from apprise.plugins.discord import NotifyDiscord
    from apprise.plugins.slack import NotifySlack

    def point(recorder: HttpRecorder) -> tuple[ChannelSettings, ChannelSettings]:
        monkeypatch.setattr(NotifySlack, "webhook_url", f"{recorder.base}/slack")
        monkeypatch.setattr(NotifyDiscord, "notify_url", f"{recorder.base}/discord")
        slack = ChannelSettings("slack", ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7",))
        discord = ChannelSettings(
            "discord", ("discord://417429632418316298/JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKj",)
        )
        return slack, discord

    return point


async def test_alert_fires_once_after_for_renotifies_after_cooldown_and_resolves(
    tmp_path: Path, webhook: HttpRecorder, smtp: SmtpRecorder, chat_plugins_to_recorder: Any
) -> None:
    slack, discord = chat_plugins_to_recorder(webhook)
    mail = ChannelSettings("mail", (smtp.url(),))
    channels = (json_channel(webhook), slack, discord, mail)
    async with pipeline(tmp_path, cpu_rule(for_="2s", cooldown="5s"), channels) as line:
        await eventually(lambda: line.engine.cycles >= 4, what="a few evaluations")
        line.values["web-1"] = 75.0  # above warning (70), below critical (85)
        await eventually(
            lambda: getattr(line.instance("web-1", "warning"), "state", None) == PENDING,
            what="pending",
        )
        # nothing is sent while the condition has held for less than `for`
        while getattr(line.instance("web-1", "warning"), "state", None) == PENDING:
            assert webhook.received == [] and smtp.messages == []
            await asyncio.sleep(0.05)
        await eventually(lambda: len(webhook.on("/hook")) >= 1, what="the firing message")
        await eventually(
            lambda: (
                len(webhook.on("/slack")) >= 1
                and len(webhook.on("/discord")) >= 1
                and len(smtp.messages) >= 1
            ),
            what="firing on slack, discord and mail",
        )
        first = webhook.on("/hook")[0]
        assert "[WARNING] CpuHigh on web-1" in first.text
        assert "CPU on web-1 at 75.0% (> 70.0%)" in first.text
        assert smtp.subjects() == ["[WARNING] CpuHigh on web-1"]
        assert "CpuHigh" in webhook.on("/slack")[0].text
        assert "CpuHigh" in webhook.on("/discord")[0].text

        await eventually(lambda: len(webhook.on("/hook")) >= 2, what="the re-notification")
        second = webhook.on("/hook")[1]
        assert "(still firing)" in second.text
        # the cooldown separated them: the logic guarantees a lower bound, not a duration
        assert second.at - first.at >= 5.0 - 0.3

        line.values["web-1"] = 20.0
        await eventually(lambda: len(webhook.on("/hook")) >= 3, what="the resolved message")
        resolved = webhook.on("/hook")[2]
        assert "[RESOLVED] CpuHigh on web-1" in resolved.text
        assert "Resolved after firing for" in resolved.text
        await eventually(lambda: len(smtp.messages) >= 3, what="resolved by mail")
        assert smtp.subjects()[2] == "[RESOLVED] CpuHigh on web-1"

        # the history holds every transition and every attempt with its outcome
        history = await asyncio.to_thread(
            fetch, f"{line.api}/api/v1/alerts/history?start=-10m&host=web-1"
        )
        kinds = [(e["event"], e.get("state") or e.get("kind")) for e in history["events"]]
        transitions = [state for event, state in kinds if event == "transition"]
        assert transitions == ["pending", "firing", "resolved"]
        sent = [e for e in history["events"] if e["event"] == "notification"]
        assert {e["outcome"] for e in sent} == {"sent"}
        assert {e["channel"] for e in sent} == {"hook", "slack", "discord", "mail"}
        active = await asyncio.to_thread(fetch, f"{line.api}/api/v1/alerts")
        assert active == {"alerts": []}


async def test_warning_escalates_to_critical_and_host_override_applies(
    tmp_path: Path, webhook: HttpRecorder
) -> None:
    rules = cpu_rule(for_="1s", cooldown="1m")
    async with pipeline(tmp_path, rules, (json_channel(webhook),), hosts=("web-1", "db-1")) as line:
        await eventually(lambda: line.engine.cycles >= 4, what="a few evaluations")
        line.values["web-1"] = 75.0  # warning for web-1 (70/85)
        line.values["db-1"] = 65.0  # critical for db-1 through its override (50/60)
        await eventually(lambda: len(webhook.received) >= 2, what="web-1 and db-1 messages")
        titles = sorted(r.text.splitlines()[1] for r in webhook.received)
        assert titles == ["[CRITICAL] CpuHigh on db-1", "[WARNING] CpuHigh on web-1"]
        # db-1's warning instance fires too, but critical supersedes it: no warning message
        assert line.instance("db-1", "warning").state == FIRING

        line.values["web-1"] = 90.0
        await eventually(lambda: len(webhook.received) >= 3, what="the escalation")
        assert webhook.received[2].text.splitlines()[1] == "[CRITICAL] CpuHigh on web-1"
        cycles = line.engine.cycles
        await eventually(lambda: line.engine.cycles >= cycles + 8, what="more evaluations")
        assert len(webhook.received) == 3

        active = await asyncio.to_thread(fetch, f"{line.api}/api/v1/alerts")
        shown = {(a["host"], a["severity"], a["state"]) for a in active["alerts"]}
        assert ("db-1", "critical", "firing") in shown and (
            "web-1",
            "critical",
            "firing",
        ) in shown


async def test_restart_inside_cooldown_sends_no_duplicate(
    tmp_path: Path, webhook: HttpRecorder
) -> None:
    rules = cpu_rule(for_="0s", cooldown="1m")
    async with pipeline(tmp_path, rules, (json_channel(webhook),)) as line:
        line.values["web-1"] = 95.0
        await eventually(lambda: len(webhook.received) == 1, what="the firing message")
        await line.stop_engine()
        assert (line.data_dir / "alert-state.json").is_file()

        restarted = line.start_engine()
        await eventually(lambda: restarted.cycles >= 8, what="evaluations after the restart")
        assert restarted.instances  # the state came back from the data dir
        assert line.instance("web-1", "critical").state == FIRING
        assert len(webhook.received) == 1


async def test_refusing_channel_does_not_delay_the_other_and_its_failure_is_recorded(
    tmp_path: Path, webhook: HttpRecorder
) -> None:
    dead = ChannelSettings("dead", (f"json://127.0.0.1:{free_port()}/x",))
    channels = (dead, json_channel(webhook, "live"))
    rules = cpu_rule(for_="0s", cooldown="1m")
    async with pipeline(tmp_path, rules, channels, notify_retries=2, notify_backoff=1.0) as line:
        line.values["web-1"] = 95.0
        await eventually(lambda: len(webhook.on("/live")) == 1, what="the live channel")

        async def dead_gave_up() -> list[Any]:
            return [
                e
                for e in await line.events()
                if dict(e.labels).get("channel") == "dead" and e.field("outcome") == "failed"
            ]

        deadline = time.monotonic() + 30
        while not await dead_gave_up():
            assert time.monotonic() < deadline, "no final failure recorded for dead"
            await asyncio.sleep(0.1)
        events = await line.events()
        attempts = [e for e in events if dict(e.labels).get("channel") == "dead"]
        assert [e.field("outcome") for e in attempts] == ["retrying", "retrying", "failed"]
        assert "Connection refused" in str(attempts[-1].field("error"))
        live = [e for e in events if dict(e.labels).get("channel") == "live"]
        assert [e.field("outcome") for e in live] == ["sent"]
        # the live message went out before the dead channel's first retry was even due
        assert live[0].ts_ms < attempts[1].ts_ms


async def test_bad_rule_file_is_refused_and_the_old_rules_keep_running(
    tmp_path: Path, webhook: HttpRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    rules = cpu_rule(for_="0s", cooldown="1m")
    async with pipeline(tmp_path, rules, (json_channel(webhook),)) as line:
        caplog.set_level(logging.ERROR, logger="alerting.reload")
        bad = line.rules_dir / "bad.yaml"
        bad.write_text(
            "groups:\n  - name: bad\n    rules:\n      - alert: Broken\n"
            "        metric: up\n        threshold: 1\n        fro: 5m\n"
        )
        refused = f"{bad}:7: groups[0].rules[0].fro: unknown key"
        await eventually(lambda: refused in caplog.text, what="the refused reload logged")
        assert [r.alert for r in line.engine.rules] == ["CpuHigh"]

        line.values["web-1"] = 95.0
        await eventually(lambda: len(webhook.received) == 1, what="the old rule firing")

        bad.write_text(
            "groups:\n  - name: good\n    rules:\n      - alert: Fixed\n"
            "        metric: up\n        threshold: 1\n        op: '<'\n"
        )
        await eventually(lambda: len(line.engine.rules) == 2, what="the fixed file loaded")


async def test_the_engine_publishes_its_rules_for_the_api_at_start_and_on_reload(
    tmp_path: Path, webhook: HttpRecorder
) -> None:
    async with pipeline(tmp_path, cpu_rule(), (json_channel(webhook),)) as line:

        async def published(names: list[str]) -> Any:
            body = await asyncio.to_thread(fetch, f"{line.api}/api/v1/rules")
            return body if [r["alert"] for r in body["rules"]] == names else None

        body = await published_within(published, ["CpuHigh"])
        (rule,) = body["rules"]
        assert (rule["threshold"], rule["channels"], rule["firing"]) == ("cpu", ["hook"], 0)
        line.values["web-1"] = 95.0
        await eventually(lambda: webhook.received, what="the alert firing")

        async def counted() -> bool:
            # as many as /api/v1/alerts lists (at 95% the warning instance fires too)
            body = await published(["CpuHigh"])
            alerts = await asyncio.to_thread(fetch, f"{line.api}/api/v1/alerts")
            firing = [a for a in alerts["alerts"] if a["state"] == "firing"]
            return body is not None and body["rules"][0]["firing"] == len(firing) > 0

        await eventually(counted, what="the firing instances counted")

        (line.rules_dir / "more.yaml").write_text(
            "groups:\n  - name: more\n    rules:\n      - alert: Down\n"
            "        metric: up\n        threshold: 1\n        op: '<'\n"
        )
        await published_within(published, ["CpuHigh", "Down"])


async def published_within(check: Any, names: list[str]) -> Any:
    return await eventually(lambda: check(names), what=f"rules {names} published")
