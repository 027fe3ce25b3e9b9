"""`fleetpulse alerting -c FILE` as its own process on the SQLite store another process
writes: it notifies, shows its own /metrics and /healthz on alerting.listen, reloads on
SIGHUP (refusing a bad file with file:line), and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from pathlib import Path

import aiohttp

from collector.storage.sqlite import SqliteStorage
from fleetpulse.core.samples import Sample, make_labels
from fleetpulse.core.tiers import RetentionSettings
from fleetpulse.core.timeutil import now_ms
from tests.alerting.recorders import HttpRecorder
from tests.support.poll import eventually

RULES = """
groups:
  - name: service
    interval: 250ms
    rules:
      - alert: TooHot
        metric: temperature
        reduce: last
        window: 5s
        op: ">"
        threshold: 50
        severity: critical
        for: 0s
        cooldown: 1m
        annotations:
          summary: "{{ labels.host }} is at {{ value }} degrees"
"""


async def read_lines(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode())


async def test_alerting_service_notifies_reloads_on_sighup_and_stops_on_sigterm(
    tmp_path: Path, webhook: HttpRecorder
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "service.yaml").write_text(RULES)
    store = await SqliteStorage.open(tmp_path / "data" / "metrics.db", RetentionSettings())
    port = webhook.base.rsplit(":", 1)[1]
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(
        f"alerting:\n  rules: [rules/]\n  interval: 250ms\n"
        f"  channels: {{ops: ['json://127.0.0.1:{port}/ops']}}\n"
        "  default_channels: [ops]\n"
        "  listen: 127.0.0.1:0\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleetpulse",
        "alerting",
        "-c",
        str(config),
        "--data-dir",
        str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out: list[str] = []
    err: list[str] = []
    readers = [
        asyncio.create_task(read_lines(proc.stdout, out)),
        asyncio.create_task(read_lines(proc.stderr, err)),
    ]
    try:
        await eventually(lambda: out, within=30, what="the banner")
        assert out[0].startswith(f"FleetPulse alerting: 1 rules in 1 files ({rules}), store sqlite")
        labels = make_labels({"host": "oven", "job": "j"})
        deadline = time.monotonic() + 30
        while not webhook.received:
            assert time.monotonic() < deadline, "".join(err)
            await store.write([Sample("temperature", labels, 80.0, now_ms())])
            await asyncio.sleep(0.2)
        assert "[CRITICAL] TooHot on oven" in webhook.received[0].text
        assert "oven is at 80.0 degrees" in webhook.received[0].text
        own = re.search(r"/metrics and /healthz on (http://\S+)", out[0])
        assert own is not None, out[0]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(10)) as session:

            async def delivered() -> bool:
                async with session.get(own.group(1) + "/metrics") as answer:
                    text = await answer.text()
                return (
                    'fleetpulse_notification_attempts_total{channel="ops",result="sent"} 1.0'
                    in text
                )

            await eventually(delivered, what="the delivery in the engine's /metrics")
            async with session.get(own.group(1) + "/healthz") as answer:
                assert (answer.status, await answer.json()) == (200, {"status": "ok"})

        # an mtime check could catch the bad file too; SIGHUP asks at once
        (rules / "service.yaml").write_text(RULES.replace("op:", "opp:"))
        proc.send_signal(signal.SIGHUP)
        await eventually(
            lambda: any("rules reload refused" in line for line in err),
            within=30,
            what="the refused reload",
        )
        refused = next(line for line in err if "rules reload refused" in line)
        assert f"{rules / 'service.yaml'}:10: groups[0].rules[0].opp: unknown key" in refused
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
        await asyncio.gather(*readers)
        await store.close()
    assert code == 0, "".join(err)
    assert "Traceback" not in "".join(err)
    assert len(webhook.received) == 1
