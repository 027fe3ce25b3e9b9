"""The instance state machine, and its persistence across restarts with the outbox: the state
file, and the engine that writes it and sends what a crash left in it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest

from alerting.engine import AlertEngine
from alerting.evaluator import Evaluator
from alerting.events import EventKind
from alerting.notification import Notification, NotificationKind
from alerting.rules import load_ruleset
from alerting.settings import AlertingSettings, ChannelSettings
from alerting.severity import Severity
from alerting.state import (
    FIRING,
    INACTIVE,
    PENDING,
    RESOLVED,
    AlertInstance,
    advance,
)
from alerting.statefile import STATE_FILE, SavedState, load_saved, state_payload, write_state
from collector.storage.sqlite import SqliteStorage
from fleetpulse.core.samples import Sample, Series, make_labels
from fleetpulse.core.storage import ALERT_EVENTS, Event
from fleetpulse.core.timeutil import now_ms
from tests.alerting.recorders import HttpRecorder
from tests.support.poll import eventually
from tests.support.servers import free_port


def instance() -> AlertInstance:
    labels = make_labels({"host": "a"})
    return AlertInstance("A", Severity.WARNING, labels, labels)


async def alert_events(store: SqliteStorage) -> list[Event]:
    """The history: transitions and attempts, not the rule sets the engine publishes."""
    events = await store.query_events(ALERT_EVENTS, 0, now_ms() + 60_000)
    return [e for e in events if dict(e.labels).get("event") != EventKind.RULES]


def test_condition_must_hold_for_the_whole_for_before_firing() -> None:
    inst = instance()
    assert advance(inst, True, 0, 3000, 0) == PENDING
    assert advance(inst, True, 2000, 3000, 0) is None
    assert inst.state == PENDING
    assert advance(inst, True, 3000, 3000, 0) == FIRING
    assert inst.firing_since == 3000


def test_a_dip_during_pending_starts_for_again() -> None:
    inst = instance()
    advance(inst, True, 0, 3000, 0)
    assert advance(inst, False, 1000, 3000, 0) == INACTIVE
    assert advance(inst, True, 2000, 3000, 0) == PENDING
    assert advance(inst, True, 4000, 3000, 0) is None


def test_zero_for_fires_at_once() -> None:
    inst = instance()
    assert advance(inst, True, 0, 0, 0) == FIRING


def test_keep_firing_for_rides_out_a_short_dip_then_resolves() -> None:
    inst = instance()
    advance(inst, True, 0, 0, 5000)
    assert advance(inst, False, 2000, 0, 5000) is None
    assert inst.state == FIRING
    assert advance(inst, False, 5000, 0, 5000) == RESOLVED
    assert inst.state == INACTIVE


def test_missing_data_holds_the_state() -> None:
    inst = instance()
    advance(inst, True, 0, 0, 0)
    assert advance(inst, None, 60_000, 0, 0) is None
    assert inst.state == FIRING
    pending = instance()
    advance(pending, True, 0, 10_000, 0)
    assert advance(pending, None, 5000, 10_000, 0) is None
    assert pending.state == PENDING


def test_state_round_trips_through_the_file_and_replaces_it_atomically(tmp_path: Path) -> None:
    inst = instance()
    advance(inst, True, 1000, 0, 0)
    inst.last_notified = 1000
    write_state(tmp_path, state_payload([inst], []))
    write_state(tmp_path, state_payload([inst], []))
    assert load_saved(tmp_path).instances == {inst.key: inst}
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temp file left behind


async def test_the_engine_rewrites_the_state_file_only_when_it_changed(tmp_path: Path) -> None:
    engine = AlertEngine(AlertingSettings(rules=()))
    inst = instance()
    engine.instances[inst.key] = inst
    await engine.save(tmp_path)
    written = (tmp_path / STATE_FILE).stat()
    await engine.save(tmp_path)
    assert (tmp_path / STATE_FILE).stat().st_ino == written.st_ino  # not replaced
    inst.last_notified = 1000
    await engine.save(tmp_path)
    assert (tmp_path / STATE_FILE).stat().st_ino != written.st_ino
    assert load_saved(tmp_path).instances == {inst.key: inst}


def test_an_unreadable_state_file_starts_afresh(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("{not json")
    assert load_saved(tmp_path) == SavedState({}, [])


RULE = """
groups:
  - name: g
    interval: 1s
    rules:
      - alert: Hot
        metric: temp
        reduce: last
        window: 1m
        op: ">"
        threshold: 50
        for: 10s
        cooldown: 1m
"""


def test_a_restart_does_not_reset_a_pending_for(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULE)
    ruleset = load_ruleset((tmp_path / "rules.yaml",))
    (group,) = ruleset.groups
    t0 = 1_800_000_000_000

    def hot(now: int) -> list[list[Series]]:
        return [[Series("temp", make_labels({"host": "a"}), [(now, 60.0)])]]

    first = Evaluator()
    first.evaluate(group.rules, hot(t0), ruleset.thresholds, t0)
    write_state(tmp_path / "data", state_payload(list(first.instances.values()), []))
    saved = json.loads((tmp_path / "data" / STATE_FILE).read_text())
    assert saved["instances"][0]["pending_since"] == t0

    second = Evaluator(instances=load_saved(tmp_path / "data").instances)
    step = second.evaluate(group.rules, hot(t0 + 10_000), ruleset.thresholds, t0 + 10_000)
    (inst,) = second.instances.values()
    assert inst.state == FIRING and inst.firing_since == t0 + 10_000
    assert [n.kind for n in step.notifications] == []  # no channels configured


async def test_removing_a_rule_closes_its_firing_instances_in_the_history(
    tmp_path: Path, store: SqliteStorage
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE.replace("for: 10s", "for: 0s"))
    engine = AlertEngine(AlertingSettings(rules=(rules,)))
    engine.load()
    now = now_ms()
    await store.write([Sample("temp", make_labels({"host": "a"}), 60.0, now - 500)])
    await engine.evaluate_group(store, engine.ruleset.groups[0], now)
    assert [i.state for i in engine.instances.values()] == [FIRING]

    rules.write_text(RULE.replace("alert: Hot", "alert: Cold"))
    assert engine.reload()
    assert engine.instances == {}
    (closed,) = engine._orphan_events
    assert dict(closed.fields)["state"] == INACTIVE
    assert dict(closed.fields)["previous"] == FIRING


async def test_a_bad_reload_keeps_the_last_good_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    engine = AlertEngine(AlertingSettings(rules=(rules,)))
    engine.load()
    rules.write_text(RULE.replace("reduce: last", "reduce: median"))
    assert not engine.reload()
    assert [r.alert for r in engine.rules] == ["Hot"] and engine.rules[0].reduce == "last"
    refused = "rules reload refused, keeping the last good rules problem="
    assert f"{refused}{rules}:8: groups[0].rules[0].reduce" in caplog.text


def test_the_outbox_round_trips_with_the_instances(tmp_path: Path) -> None:
    inst = instance()
    note = Notification(
        "ops", "title", "body", NotificationKind.FIRING, inst.labels, 1_800_000_000_000
    )
    write_state(tmp_path, state_payload([inst], [note.to_json()]))
    saved = load_saved(tmp_path)
    assert saved.instances == {inst.key: inst}
    assert [Notification.from_json(entry) for entry in saved.outbox] == [note]


async def test_the_outbox_left_by_a_crash_is_sent_after_the_restart_then_emptied(
    tmp_path: Path, store: SqliteStorage, webhook: HttpRecorder
) -> None:
    settings = AlertingSettings(
        rules=(tmp_path / "rules",),
        channels=(ChannelSettings("ops", (f"json://{webhook.base.partition('://')[2]}/ops",)),),
    )
    (tmp_path / "rules").mkdir()
    labels = make_labels({"host": "a", "alertname": "Hot"})
    firing = NotificationKind.FIRING
    pending = Notification("ops", "[CRITICAL] Hot on a", "body", firing, labels, 1)
    orphan = Notification("pager", "[CRITICAL] Hot on a", "body", firing, labels, 2)
    inst = instance()
    inst.last_notified = 1  # the cooldown clock saved together with the notification
    outbox = [pending.to_json(), orphan.to_json()]
    write_state(tmp_path / "data", state_payload([inst], outbox))

    engine = AlertEngine(settings)
    task = asyncio.create_task(engine.run(store, tmp_path / "data"))
    try:
        await eventually(lambda: webhook.received, what="the notification from the outbox")
        await eventually(
            lambda: load_saved(tmp_path / "data").outbox == [],
            what="the outbox emptied on disk",
        )

        async def both_recorded() -> bool:
            return len(await alert_events(store)) == 2

        await eventually(both_recorded, "the outcomes in the history")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert "[CRITICAL] Hot on a" in webhook.received[0].text
    assert len(webhook.received) == 1
    outcomes = {
        (dict(e.labels)["channel"], e.field("outcome"), e.field("error"))
        for e in await alert_events(store)
    }
    assert outcomes == {
        ("ops", "sent", ""),
        ("pager", "failed", "channel no longer configured, dropped"),
    }
    assert load_saved(tmp_path / "data").instances == {inst.key: inst}


async def test_a_notification_is_in_the_saved_outbox_until_its_final_outcome(
    tmp_path: Path, store: SqliteStorage
) -> None:
    (tmp_path / "rules.yaml").write_text(RULE.replace("for: 10s", "for: 0s"))
    dead = ChannelSettings("dead", (f"json://127.0.0.1:{free_port()}/x",))
    settings = AlertingSettings(
        rules=(tmp_path / "rules.yaml",),
        channels=(dead,),
        default_channels=("dead",),
        notify_retries=1,
        notify_backoff=1.0,
        notify_timeout=5.0,
    )
    await store.write([Sample("temp", make_labels({"host": "a"}), 60.0, now_ms())])
    engine = AlertEngine(settings)
    engine.load()
    task = asyncio.create_task(engine.run(store, tmp_path / "data"))

    async def outcomes() -> list[object]:
        return [e.field("outcome") for e in await alert_events(store) if e.field("outcome")]

    async def retrying() -> bool:
        return "retrying" in await outcomes()

    async def failed() -> bool:
        return "failed" in await outcomes()

    try:
        await eventually(retrying, "the first refused attempt")
        (entry,) = load_saved(tmp_path / "data").outbox  # saved while it waits for its retry
        assert entry["kind"] == "firing" and entry["channel"] == "dead"
        await eventually(failed, "the retries to run out")
        await eventually(
            lambda: load_saved(tmp_path / "data").outbox == [],
            what="the outbox emptied on disk",
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await outcomes() == ["retrying", "failed"]
    (inst,) = load_saved(tmp_path / "data").instances.values()
    assert inst.last_notified is not None  # a failure is recorded, not re-sent by the cooldown
