"""The pure evaluator and its notification policy, without I/O: no event loop, no store, no
clock. Series go in, with the time; transitions, events and notifications come out."""

from __future__ import annotations

import json
from typing import Any

from alerting.evaluator import Evaluator, Step
from alerting.notification import Notification, NotificationKind
from alerting.rules import Rule
from alerting.severity import Severity
from alerting.state import FIRING, INACTIVE, PENDING, RESOLVED, AlertInstance
from alerting.statefile import state_payload
from alerting.templates import compile_template
from fleetpulse.core.samples import Series, make_labels
from fleetpulse.core.selector import parse_selector
from fleetpulse.core.thresholds import Level, Thresholds

T0 = 1_800_000_000_000
S, M = 1000, 60_000  # a second and a minute, in ms
CPU = Thresholds((("cpu", Level(70, 85)),))
NO_THRESHOLDS = Thresholds()


def rule(**overrides: Any) -> Rule:
    fields: dict[str, Any] = {
        "alert": "Hot",
        "selector": parse_selector("temp"),
        "threshold": 50.0,
        "severity": Severity.CRITICAL,
        "cooldown": 600.0,
        "annotations": (("summary", compile_template("{{ labels.host }} at {{ value }}")),),
    }
    fields.update(overrides)
    return Rule(**fields)


def cpu_rule(**overrides: Any) -> Rule:
    """Warning and critical instances per series, from the thresholds key `cpu` (70/85)."""
    return rule(
        alert="CpuHigh",
        selector=parse_selector("cpu"),
        threshold="cpu",
        severity=Severity.WARNING,
        **overrides,
    )


def series(value: float, now: int, host: str = "a", metric: str = "temp") -> list[Series]:
    """What a rule's query returns when the window's last point is `value`."""
    return [Series(metric, make_labels({"host": host}), [(now - S, value), (now, value)])]


def run(
    evaluator: Evaluator, one: Rule, value: float | None, now: int, thresholds: Thresholds
) -> Step:
    """One evaluation of `one`; `value` None: its query failed."""
    found = None if value is None else series(value, now, metric=one.selector.metric)
    return evaluator.evaluate([one], [found], thresholds, now)


def states(step: Step) -> list[tuple[str, str, str]]:
    return [(t.severity, t.previous, t.entered) for t in step.transitions]


def sent(step: Step) -> list[tuple[str, str, str]]:
    return [(n.channel, n.kind, n.title) for n in step.notifications]


def test_for_holds_an_alert_pending_then_it_fires_and_notifies_once() -> None:
    hot = rule(for_=120.0)
    evaluator = Evaluator(default_channels=("ops",))
    first = run(evaluator, hot, 60.0, T0, NO_THRESHOLDS)
    assert states(first) == [("critical", "inactive", "pending")]
    assert sent(first) == []
    (event,) = first.events
    assert dict(event.fields) == {
        "state": "pending",
        "previous": "inactive",
        "threshold": 50.0,
        "summary": "a at 60.0",
        "value": 60.0,
        "since_ms": T0,
    }
    assert dict(event.labels) == {
        "alertname": "Hot",
        "event": "transition",
        "host": "a",
        "severity": "critical",
    }
    assert run(evaluator, hot, 60.0, T0 + M, NO_THRESHOLDS) == Step()  # for not over yet
    fired = run(evaluator, hot, 61.0, T0 + 2 * M, NO_THRESHOLDS)
    assert states(fired) == [("critical", "pending", "firing")]
    assert sent(fired) == [("ops", "firing", "[CRITICAL] Hot on a")]
    assert dict(fired.events[0].fields)["since_ms"] == T0 + 2 * M
    (note,) = fired.notifications
    assert note.labels == fired.transitions[0].labels and note.created_ms == T0 + 2 * M
    assert "Value 61 > 50 since" in note.body
    assert sent(run(evaluator, hot, 62.0, T0 + 3 * M, NO_THRESHOLDS)) == []  # in its cooldown


def test_a_dip_while_pending_goes_back_to_inactive_without_a_word() -> None:
    hot = rule(for_=120.0)
    evaluator = Evaluator(default_channels=("ops",))
    run(evaluator, hot, 60.0, T0, NO_THRESHOLDS)
    dip = run(evaluator, hot, 40.0, T0 + M, NO_THRESHOLDS)
    assert states(dip) == [("critical", "pending", "inactive")]
    assert sent(dip) == []
    again = run(evaluator, hot, 60.0, T0 + 2 * M, NO_THRESHOLDS)
    assert states(again) == [("critical", "inactive", "pending")]  # `for` starts over
    assert run(evaluator, hot, 60.0, T0 + 3 * M, NO_THRESHOLDS).transitions == []


def test_a_resolve_is_sent_for_a_notified_episode_with_how_long_it_fired() -> None:
    hot = rule()
    evaluator = Evaluator(default_channels=("ops", "mail"))
    run(evaluator, hot, 60.0, T0, NO_THRESHOLDS)
    resolved = run(evaluator, hot, 40.0, T0 + 90 * S, NO_THRESHOLDS)
    assert states(resolved) == [("critical", "firing", "resolved")]
    assert sent(resolved) == [
        ("ops", "resolved", "[RESOLVED] Hot on a"),
        ("mail", "resolved", "[RESOLVED] Hot on a"),
    ]
    assert "Resolved after firing for 1m30s" in resolved.notifications[0].body
    fields = dict(resolved.events[0].fields)
    assert (fields["state"], fields["since_ms"]) == ("resolved", T0)  # since it fired
    (inst,) = evaluator.instances.values()
    assert inst.state == INACTIVE and inst.firing_since is None


def test_without_send_resolved_a_resolve_is_recorded_but_not_sent() -> None:
    quiet = rule(send_resolved=False)
    evaluator = Evaluator(default_channels=("ops",))
    assert sent(run(evaluator, quiet, 60.0, T0, NO_THRESHOLDS)) == [
        ("ops", "firing", "[CRITICAL] Hot on a")
    ]
    resolved = run(evaluator, quiet, 40.0, T0 + M, NO_THRESHOLDS)
    assert states(resolved) == [("critical", "firing", "resolved")]
    assert sent(resolved) == []


def test_keep_firing_for_rides_out_a_short_dip_then_resolves() -> None:
    sticky = rule(keep_firing_for=120.0)
    evaluator = Evaluator(default_channels=("ops",))
    run(evaluator, sticky, 60.0, T0, NO_THRESHOLDS)
    dip = run(evaluator, sticky, 40.0, T0 + M, NO_THRESHOLDS)
    assert dip == Step()  # still firing, nothing to say
    back = run(evaluator, sticky, 60.0, T0 + 90 * S, NO_THRESHOLDS)
    assert back == Step()  # the same episode: no second firing message
    assert run(evaluator, sticky, 40.0, T0 + 3 * M, NO_THRESHOLDS) == Step()
    gone = run(evaluator, sticky, 40.0, T0 + 90 * S + 2 * M, NO_THRESHOLDS)
    assert states(gone) == [("critical", "firing", "resolved")]
    assert sent(gone) == [("ops", "resolved", "[RESOLVED] Hot on a")]


def test_a_failed_query_or_a_window_without_points_holds_the_state() -> None:
    hot = rule(for_=60.0)
    evaluator = Evaluator(default_channels=("ops",))
    run(evaluator, hot, 60.0, T0, NO_THRESHOLDS)
    assert run(evaluator, hot, None, T0 + 10 * M, NO_THRESHOLDS) == Step()
    empty = [Series("temp", make_labels({"host": "a"}), [])]
    assert evaluator.evaluate([hot], [empty], NO_THRESHOLDS, T0 + 11 * M) == Step()
    assert [i.state for i in evaluator.instances.values()] == [PENDING]


def test_a_still_firing_alert_is_sent_again_once_its_cooldown_is_over() -> None:
    hot = rule(cooldown=300.0)
    evaluator = Evaluator(default_channels=("ops",))
    run(evaluator, hot, 60.0, T0, NO_THRESHOLDS)
    assert sent(run(evaluator, hot, 60.0, T0 + 4 * M, NO_THRESHOLDS)) == []
    again = run(evaluator, hot, 60.0, T0 + 5 * M, NO_THRESHOLDS)
    assert sent(again) == [("ops", "renotify", "[CRITICAL] Hot on a (still firing)")]
    assert again.transitions == []
    assert sent(run(evaluator, hot, 60.0, T0 + 6 * M, NO_THRESHOLDS)) == []


def test_the_cooldown_spans_a_resolve_so_a_flapping_series_notifies_once_per_cooldown() -> None:
    flapping = rule(cooldown=60.0)
    evaluator = Evaluator(default_channels=("ops",))
    notes = []
    for i in range(90):
        # the condition flips every second
        step = run(evaluator, flapping, 60.0 if i % 2 == 0 else 40.0, T0 + i * S, NO_THRESHOLDS)
        notes += [(i, n.kind) for n in step.notifications]
    assert notes == [(0, "firing"), (1, "resolved"), (60, "firing"), (61, "resolved")]


def test_a_re_fire_inside_the_cooldown_is_recorded_but_sent_once_the_cooldown_is_over() -> None:
    hot = rule(cooldown=600.0)
    evaluator = Evaluator(default_channels=("ops",))
    run(evaluator, hot, 60.0, T0, NO_THRESHOLDS)
    run(evaluator, hot, 40.0, T0 + M, NO_THRESHOLDS)
    refired = run(evaluator, hot, 60.0, T0 + 2 * M, NO_THRESHOLDS)
    assert states(refired) == [("critical", "inactive", "firing")]
    assert sent(refired) == []
    # a new episode: its first message is a firing one, not "still firing"
    later = run(evaluator, hot, 60.0, T0 + 10 * M, NO_THRESHOLDS)
    assert sent(later) == [("ops", "firing", "[CRITICAL] Hot on a")]
    assert "since" in later.notifications[0].body


def test_critical_supersedes_warning_for_the_same_series() -> None:
    cpu = cpu_rule(cooldown=600.0)
    evaluator = Evaluator(default_channels=("ops",))
    warning = run(evaluator, cpu, 75.0, T0, CPU)
    assert states(warning) == [("warning", "inactive", "firing")]
    assert sent(warning) == [("ops", "firing", "[WARNING] CpuHigh on a")]

    critical = run(evaluator, cpu, 90.0, T0 + M, CPU)
    assert states(critical) == [("critical", "inactive", "firing")]
    assert sent(critical) == [("ops", "firing", "[CRITICAL] CpuHigh on a")]
    # the warning instance fires on, silently: the critical one speaks for the series
    assert {i.severity: i.state for i in evaluator.instances.values()} == {
        "warning": FIRING,
        "critical": FIRING,
    }
    # past the warning's cooldown too, only the critical one speaks
    assert sent(run(evaluator, cpu, 90.0, T0 + 11 * M, CPU)) == [
        ("ops", "renotify", "[CRITICAL] CpuHigh on a (still firing)")
    ]

    eased = run(evaluator, cpu, 75.0, T0 + 12 * M, CPU)
    assert states(eased) == [("critical", "firing", "resolved")]
    # the warning speaks again at once (its cooldown is over), as a new episode
    assert sent(eased) == [
        ("ops", "resolved", "[RESOLVED] CpuHigh on a"),
        ("ops", "firing", "[WARNING] CpuHigh on a"),
    ]


def test_a_warning_no_longer_superseded_waits_for_its_own_cooldown() -> None:
    cpu = cpu_rule(cooldown=600.0)
    evaluator = Evaluator(default_channels=("ops",))
    run(evaluator, cpu, 75.0, T0, CPU)
    run(evaluator, cpu, 90.0, T0 + M, CPU)
    eased = run(evaluator, cpu, 75.0, T0 + 5 * M, CPU)
    assert sent(eased) == [("ops", "resolved", "[RESOLVED] CpuHigh on a")]
    assert sent(run(evaluator, cpu, 75.0, T0 + 9 * M, CPU)) == []
    assert sent(run(evaluator, cpu, 75.0, T0 + 10 * M, CPU)) == [
        ("ops", "firing", "[WARNING] CpuHigh on a")
    ]


def test_a_warning_is_superseded_only_by_the_critical_of_its_own_series() -> None:
    cpu = cpu_rule()
    evaluator = Evaluator(default_channels=("ops",))
    both = [
        Series("cpu", make_labels({"host": "a"}), [(T0, 90.0)]),
        Series("cpu", make_labels({"host": "b"}), [(T0, 75.0)]),
    ]
    step = evaluator.evaluate([cpu], [both], CPU, T0)
    assert sorted(sent(step)) == [
        ("ops", "firing", "[CRITICAL] CpuHigh on a"),
        ("ops", "firing", "[WARNING] CpuHigh on b"),
    ]


def test_a_rule_routes_to_its_own_channels_and_without_any_says_so() -> None:
    routed = Evaluator(default_channels=("ops",))
    step = run(routed, rule(notify=("pager",)), 60.0, T0, NO_THRESHOLDS)
    assert sent(step) == [("pager", "firing", "[CRITICAL] Hot on a")]
    unrouted = run(Evaluator(), rule(), 60.0, T0, NO_THRESHOLDS)
    assert unrouted.notifications == []
    assert unrouted.unrouted == [("Hot", NotificationKind.FIRING)]
    assert states(unrouted) == [("critical", "inactive", "firing")]  # evaluated all the same


def test_quiet_instances_are_forgotten_once_their_cooldown_is_over() -> None:
    hot = rule(cooldown=300.0)
    evaluator = Evaluator()
    run(evaluator, hot, 60.0, T0, NO_THRESHOLDS)
    run(evaluator, hot, 40.0, T0 + M, NO_THRESHOLDS)
    assert [i.state for i in evaluator.instances.values()] == [INACTIVE]  # its clock matters
    run(evaluator, hot, 40.0, T0 + 5 * M, NO_THRESHOLDS)
    assert evaluator.instances == {}


def test_dropping_a_removed_rule_closes_its_active_instances() -> None:
    evaluator = Evaluator()
    run(evaluator, rule(), 60.0, T0, NO_THRESHOLDS)
    run(evaluator, rule(alert="Cold", for_=60.0), 60.0, T0, NO_THRESHOLDS)
    step = evaluator.drop_rules({"Cold"}, T0 + M)
    assert [(t.alert, t.previous, t.entered) for t in step.transitions] == [
        ("Hot", FIRING, INACTIVE)
    ]
    fields = dict(step.events[0].fields)
    assert (fields["previous"], fields["state"], fields["summary"]) == (
        "firing",
        "inactive",
        "rule removed",
    )
    assert [i.alert for i in evaluator.instances.values()] == ["Cold"]


def test_state_round_trips_with_the_same_values_it_always_had() -> None:
    cpu = cpu_rule()
    evaluator = Evaluator(default_channels=("ops",))
    step = run(evaluator, cpu, 90.0, T0, CPU)
    payload = state_payload(
        list(evaluator.instances.values()), [n.to_json() for n in step.notifications]
    )
    raw = json.loads(payload)
    assert {(i["severity"], i["state"]) for i in raw["instances"]} == {
        ("critical", "firing"),
        ("warning", "firing"),
    }
    assert [n["kind"] for n in raw["outbox"]] == ["firing"]
    restored = {
        AlertInstance.from_json(i).key: AlertInstance.from_json(i) for i in raw["instances"]
    }
    assert restored == evaluator.instances
    assert [Notification.from_json(n) for n in raw["outbox"]] == step.notifications

    # a restarted evaluator carries on where the first one stopped
    after = Evaluator(default_channels=("ops",), instances=restored)
    resolved = run(after, cpu, 10.0, T0 + M, CPU)
    assert sorted(states(resolved)) == [
        ("critical", "firing", "resolved"),
        ("warning", "firing", "resolved"),
    ]
    assert sent(resolved) == [("ops", "resolved", "[RESOLVED] CpuHigh on a")]
    assert {t.entered for t in resolved.transitions} == {RESOLVED}
