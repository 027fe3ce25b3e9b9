"""Alert engine crash: `fleetpulse alerting` as a subprocess on a SQLite store this test fills,
notifying through json:// to a local HTTP recorder, is killed with SIGKILL and started again.

- Killed while an alert is pending: the `for` clock is not reset; the alert fires once, at
  the original pending time + `for` (plus at most one evaluation cycle), not `for` after the
  restart.
- Killed while firing inside its cooldown: no duplicate notification after the restart, and
  the re-notification once the cooldown is over still comes, once.

Timing is checked against the engine's own timestamps in the alert history (logic, not
speed): a reset `for` clock could not fire before `restart + for`, so firing earlier proves
it was kept. `for` is 10 s so a slow restart (up to ~8 s) still leaves that proof standing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from alerting.history import query_history
from collector.storage.sqlite import SqliteStorage
from fleetpulse.core.samples import Sample, make_labels
from fleetpulse.core.tiers import RetentionSettings
from fleetpulse.core.timeutil import now_ms
from tests.alerting.recorders import HttpRecorder, serve_recorder
from tests.reliability.procs import Service, start_service
from tests.support.poll import eventually

INTERVAL = "250ms"


def rules(for_: str, cooldown: str) -> str:
    return f"""
groups:
  - name: crash
    interval: {INTERVAL}
    rules:
      - alert: OvenHot
        metric: temperature
        reduce: last
        window: 5s
        op: ">"
        threshold: 50
        severity: critical
        for: {for_}
        cooldown: {cooldown}
        annotations:
          summary: "{{{{ labels.host }}}} at {{{{ value }}}} degrees"
"""


async def feed(store: SqliteStorage) -> None:
    """The condition holds all along: a hot oven every 200 ms."""
    labels = make_labels({"host": "oven", "job": "j"})
    while True:
        await store.write([Sample("temperature", labels, 80.0, now_ms())])
        await asyncio.sleep(0.2)


class Rig:
    def __init__(self, tmp_path: Path, store: SqliteStorage, recorder: HttpRecorder) -> None:
        self.tmp_path = tmp_path
        self.store = store
        self.recorder = recorder
        self.services: list[Service] = []
        self.started_ms = now_ms()

    def configure(self, for_: str, cooldown: str, extra: str = "") -> None:
        (self.tmp_path / "rules").mkdir()
        (self.tmp_path / "rules" / "crash.yaml").write_text(rules(for_, cooldown))
        port = self.recorder.base.rsplit(":", 1)[1]
        (self.tmp_path / "fleetpulse.yaml").write_text(
            f"alerting:\n  rules: [rules/]\n  interval: {INTERVAL}\n"
            f"  channels: {{ops: ['json://127.0.0.1:{port}/ops']}}\n"
            "  default_channels: [ops]\n" + extra
        )

    async def start(self) -> Service:
        service = await start_service(
            self.tmp_path, "alerting", "-c", "fleetpulse.yaml", "--data-dir", "data"
        )
        self.services.append(service)
        await service.wait_line(lambda line: line.startswith("FleetPulse alerting:"))
        return service

    async def history(self, event: str) -> list[dict[str, Any]]:
        entries = await query_history(self.store, self.started_ms - 1000, now_ms() + 1000)
        return [e for e in entries if e["event"] == event]

    async def wait_history(self, predicate: Any, what: str, within: float = 40.0) -> None:
        entries: list[dict[str, Any]] = []

        async def poll() -> None:
            nonlocal entries
            while True:
                entries = await query_history(self.store, self.started_ms - 1000, now_ms() + 1000)
                if predicate(entries):
                    return
                await asyncio.sleep(0.1)

        try:
            async with asyncio.timeout(within):
                await poll()
        except TimeoutError:
            logs = "".join(s.text() for s in self.services)[-3000:]
            raise AssertionError(f"timed out waiting for {what}: {entries}\n{logs}") from None

    def output(self) -> str:
        return "".join(s.text() for s in self.services)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    (tmp_path / "data").mkdir()
    store = await SqliteStorage.open(tmp_path / "data" / "metrics.db", RetentionSettings())
    feeder = asyncio.create_task(feed(store))
    async with serve_recorder(HttpRecorder()) as recorder:
        rig = Rig(tmp_path, store, recorder)
        try:
            yield rig
        finally:
            for service in rig.services:
                await service.stop()
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
            await store.close()
    assert "Traceback" not in rig.output()


def transitions(entries: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["event"] == "transition" and e["state"] == state]


async def test_sigkill_while_pending_keeps_the_for_clock(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    for_ms = 10_000
    rig.configure("10s", "1h")
    first = await rig.start()
    await rig.wait_history(lambda e: transitions(e, "pending"), "the alert to go pending")
    (pending,) = transitions(await rig.history("transition"), "pending")
    pending_since = int(pending["since_ms"])
    # SIGKILL 2 s into the pending state, well inside the 10 s `for`
    await asyncio.sleep(max(0.0, (pending_since + 2000 - now_ms()) / 1000))
    await first.kill()
    restarted_ms = now_ms()
    await rig.start()
    await eventually(lambda: rig.recorder.received, within=40, what="the firing notification")
    await rig.wait_history(lambda e: transitions(e, "firing"), "the firing transition")
    await asyncio.sleep(2.0)  # room for a duplicate to show up, if there were one
    entries = await rig.history("transition")
    firing = transitions(entries, "firing")
    late_ms = int(firing[0]["ts_ms"]) - (pending_since + for_ms)
    with capsys.disabled():
        print(
            f"\nalert crash (pending): for=10s, SIGKILL at pending+2s; fired {late_ms}ms after "
            f"pending_since+for (a reset clock could not have fired before "
            f"pending_since+for+{restarted_ms - pending_since}ms)"
        )
    assert len(transitions(entries, "pending")) == 1, "the restart did not start a new pending"
    assert len(firing) == 1
    assert int(firing[0]["ts_ms"]) >= pending_since + for_ms, "never early"
    assert int(firing[0]["ts_ms"]) < restarted_ms + for_ms, "the for clock was reset"
    assert len(rig.recorder.received) == 1, [r.text for r in rig.recorder.received]
    assert "[CRITICAL] OvenHot on oven" in rig.recorder.received[0].text


async def test_sigkill_while_firing_in_cooldown_neither_duplicates_nor_misses(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    cooldown_ms = 8_000
    rig.configure("0s", "8s")
    first = await rig.start()
    await eventually(lambda: rig.recorder.received, within=40, what="the first notification")
    await asyncio.sleep(1.0)  # firing, notified, well inside the cooldown
    await first.kill()
    await rig.start()
    await eventually(lambda: len(rig.recorder.received) >= 2, within=40, what="the re-notification")
    await asyncio.sleep(1.5)  # room for a duplicate to show up, if there were one
    received = [r.text for r in rig.recorder.received]

    def sent(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in entries if e["event"] == "notification" and e["outcome"] == "sent"]

    await rig.wait_history(lambda e: len(sent(e)) >= 2, "both notifications in the history")
    notes = sent(await rig.history("notification"))
    gap_ms = int(notes[1]["ts_ms"]) - int(notes[0]["ts_ms"])
    with capsys.disabled():
        print(
            f"\nalert crash (cooldown): cooldown=8s, killed 1s after the first notification; "
            f"notifications={len(received)} kinds={[n['kind'] for n in notes]} "
            f"gap={gap_ms}ms"
        )
    assert len(received) == 2, received
    assert "(still firing)" not in received[0]
    assert "[CRITICAL] OvenHot on oven (still firing)" in received[1]
    assert [n["kind"] for n in notes] == ["firing", "renotify"]
    assert gap_ms >= cooldown_ms, "re-notified inside the cooldown"
    assert len(transitions(await rig.history("transition"), "firing")) == 1


async def test_sigkill_while_a_notification_is_retrying_still_delivers_it(rig: Rig) -> None:
    rig.recorder.failing.add("/")  # 503 to everything
    rig.configure("0s", "1h", "  notify_retries: 10\n  notify_backoff: 1s\n")
    first = await rig.start()
    await eventually(lambda: len(rig.recorder.refused) >= 1, within=40, what="a refused delivery")
    await first.kill()  # the notification waits in its backoff, in memory
    rig.recorder.failing.clear()
    await rig.start()
    # a cycle is 250 ms: a re-sent notification would be here within seconds, not after 1h
    await eventually(lambda: rig.recorder.received, within=10, what="the notification")
