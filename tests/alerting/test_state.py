"""The instance state machine and its persistence across restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from alerting.notify import Notification
from alerting.rules import Group, load_ruleset
from alerting.ruletest import MemoryStorage
from alerting.service import AlertEngine
from alerting.settings import AlertingSettings, ChannelSettings
from alerting.state import (
    FIRING,
    INACTIVE,
    PENDING,
    RESOLVED,
    STATE_FILE,
    AlertInstance,
    advance,
    load_saved,
    load_state,
    save_state,
)
from fleetpulse.core.samples import Series, make_labels
from fleetpulse.core.timeutil import now_ms
from tests.alerting.recorders import http_recorder, wait_for
from tests.support.servers import closed_port


def instance() -> AlertInstance:
    labels = make_labels({"host": "a"})
    return AlertInstance("A", "warning", labels, labels)


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
    written = save_state(tmp_path, [inst])
    assert save_state(tmp_path, [inst], written) == written  # unchanged: not rewritten
    assert load_state(tmp_path) == {inst.key: inst}
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temp file left behind


def test_an_unreadable_state_file_starts_afresh(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("{not json")
    assert load_state(tmp_path) == {}


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


async def test_a_restart_does_not_reset_a_pending_for(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULE)
    settings = AlertingSettings(rules=(tmp_path / "rules.yaml",))
    t0 = 1_800_000_000_000
    storage = MemoryStorage(
        [Series("temp", make_labels({"host": "a"}), [(t0 + i * 1000, 60.0) for i in range(20)])]
    )
    first = AlertEngine(settings)
    first.ruleset = load_ruleset(settings.rules)
    group: Group = first.ruleset.groups[0]
    await first.evaluate_group(storage, group, t0)
    save_state(tmp_path / "data", list(first.instances.values()))
    saved = json.loads((tmp_path / "data" / STATE_FILE).read_text())
    assert saved["instances"][0]["pending_since"] == t0

    second = AlertEngine(settings)
    second.ruleset = first.ruleset
    second.instances = load_state(tmp_path / "data")
    result = await second.evaluate_group(storage, group, t0 + 10_000)
    (inst,) = second.instances.values()
    assert inst.state == FIRING and inst.firing_since == t0 + 10_000
    assert [n.kind for n in result.notifications] == []  # no channels configured


async def test_a_flapping_series_notifies_once_per_cooldown_not_per_flap(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULE.replace("for: 10s", "for: 0s"))
    settings = AlertingSettings(rules=(tmp_path / "rules.yaml",), default_channels=("ops",))
    t0 = 1_800_000_000_000
    flapping = [(t0 + i * 1000, 60.0 if i % 2 == 0 else 40.0) for i in range(90)]
    storage = MemoryStorage([Series("temp", make_labels({"host": "a"}), flapping)])
    engine = AlertEngine(settings)
    engine.ruleset = load_ruleset(settings.rules)
    sent = []
    for i in range(90):
        # the window holds only the latest point, so the condition flips every second
        result = await engine.evaluate_group(storage, engine.ruleset.groups[0], t0 + i * 1000)
        sent += [(i, n.kind) for n in result.notifications]
    assert sent == [(0, "firing"), (1, "resolved"), (60, "firing"), (61, "resolved")]


async def test_removing_a_rule_closes_its_firing_instances_in_the_history(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE.replace("for: 10s", "for: 0s"))
    engine = AlertEngine(AlertingSettings(rules=(rules,)))
    engine.load()
    t0 = 1_800_000_000_000
    storage = MemoryStorage([Series("temp", make_labels({"host": "a"}), [(t0, 60.0)])])
    await engine.evaluate_group(storage, engine.ruleset.groups[0], t0)
    assert [i.state for i in engine.instances.values()] == [FIRING]

    rules.write_text(RULE.replace("alert: Hot", "alert: Cold"))
    assert engine.reload()
    assert engine.instances == {}
    (closed,) = engine._orphan_events
    assert dict(closed.fields)["state"] == INACTIVE
    assert dict(closed.fields)["previous"] == FIRING


async def test_a_bad_reload_keeps_the_last_good_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    engine = AlertEngine(AlertingSettings(rules=(rules,)))
    engine.load()
    rules.write_text(RULE.replace("reduce: last", "reduce: median"))
    assert not engine.reload()
    assert [r.alert for r in engine.rules] == ["Hot"] and engine.rules[0].reduce == "last"
    assert engine.last_reload_error is not None
    assert f"{rules}:8: groups[0].rules[0].reduce" in str(engine.last_reload_error)


def test_the_outbox_round_trips_with_the_instances(tmp_path: Path) -> None:
    inst = instance()
    note = Notification("ops", "title", "body", "firing", inst.labels, 1_800_000_000_000)
    save_state(tmp_path, [inst], outbox=[note.to_json()])
    saved = load_saved(tmp_path)
    assert saved.instances == {inst.key: inst}
    assert [Notification.from_json(entry) for entry in saved.outbox] == [note]
    assert load_state(tmp_path) == {inst.key: inst}


async def test_the_outbox_left_by_a_crash_is_sent_after_the_restart_then_emptied(
    tmp_path: Path,
) -> None:
    async with http_recorder() as recorder:
        settings = AlertingSettings(
            rules=(tmp_path / "rules",),
            channels=(
                ChannelSettings("ops", (f"json://{recorder.base.partition('://')[2]}/ops",)),
            ),
        )
        (tmp_path / "rules").mkdir()
        labels = make_labels({"host": "a", "alertname": "Hot"})
        pending = Notification("ops", "[CRITICAL] Hot on a", "body", "firing", labels, 1)
        orphan = Notification("pager", "[CRITICAL] Hot on a", "body", "firing", labels, 2)
        inst = instance()
        inst.last_notified = 1  # the cooldown clock saved together with the notification
        save_state(tmp_path / "data", [inst], outbox=[pending.to_json(), orphan.to_json()])

        storage = MemoryStorage()
        engine = AlertEngine(settings)
        task = asyncio.create_task(engine.run(storage, tmp_path / "data"))
        try:
            await wait_for(lambda: recorder.received, what="the notification from the outbox")
            await wait_for(
                lambda: load_saved(tmp_path / "data").outbox == [],
                what="the outbox emptied on disk",
            )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert "[CRITICAL] Hot on a" in recorder.received[0].text
    assert len(recorder.received) == 1
    outcomes = {
        (dict(e.labels)["channel"], e.field("outcome"), e.field("error")) for e in storage.events
    }
    assert outcomes == {
        ("ops", "sent", ""),
        ("pager", "failed", "channel no longer configured, dropped"),
    }
    assert load_state(tmp_path / "data") == {inst.key: inst}


async def test_a_notification_is_in_the_saved_outbox_until_its_final_outcome(
    tmp_path: Path,
) -> None:
    (tmp_path / "rules.yaml").write_text(RULE.replace("for: 10s", "for: 0s"))
    dead = ChannelSettings("dead", (f"json://127.0.0.1:{closed_port()}/x",))
    settings = AlertingSettings(
        rules=(tmp_path / "rules.yaml",),
        channels=(dead,),
        default_channels=("dead",),
        notify_retries=1,
        notify_backoff=1.0,
        notify_timeout=5.0,
    )
    t0 = now_ms()
    storage = MemoryStorage([Series("temp", make_labels({"host": "a"}), [(t0, 60.0)])])
    engine = AlertEngine(settings)
    engine.load()
    task = asyncio.create_task(engine.run(storage, tmp_path / "data"))

    def outcomes() -> list[object]:
        return [e.field("outcome") for e in storage.events if e.field("outcome")]

    try:
        await wait_for(lambda: "retrying" in outcomes(), what="the first refused attempt")
        (entry,) = load_saved(tmp_path / "data").outbox  # saved while it waits for its retry
        assert entry["kind"] == "firing" and entry["channel"] == "dead"
        await wait_for(lambda: "failed" in outcomes(), what="the retries to run out")
        await wait_for(
            lambda: load_saved(tmp_path / "data").outbox == [],
            what="the outbox emptied on disk",
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert outcomes() == ["retrying", "failed"]
    (inst,) = load_state(tmp_path / "data").values()
    assert inst.last_notified is not None  # a failure is recorded, not re-sent by the cooldown
