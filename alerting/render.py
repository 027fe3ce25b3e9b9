"""What an alert instance says: the summary of its transitions and the title and body of its
notifications, rendered from the rule's annotations and the instance (no I/O; the Jinja
sandbox and the message layout are `alerting.templates`)."""

from __future__ import annotations

from typing import Any

from alerting.notification import NotificationKind
from alerting.rules import Rule
from alerting.state import FIRING, RESOLVED, AlertInstance, AlertState
from alerting.templates import Message, compose, dashboard_link, render
from fleetpulse.core.timeutil import format_time


def variables(
    rule: Rule, inst: AlertInstance, state: AlertState, grafana_url: str
) -> dict[str, Any]:
    """What templates see."""
    labels = dict(inst.labels)
    started = inst.firing_since or inst.pending_since
    return {
        "labels": labels,
        "value": inst.value if inst.value is not None else float("nan"),
        "threshold": inst.threshold,
        "severity": inst.severity,
        "state": state,
        "alert": rule.alert,
        "started_at": format_time(started) if started else "",
        "grafana": dashboard_link(grafana_url, labels.get("host", "")),
    }


def summary(rule: Rule, inst: AlertInstance, state: AlertState, grafana_url: str) -> str:
    """The rule's `summary` annotation for `inst` in `state`; "" without one."""
    for key, template in rule.annotations:
        if key == "summary":
            return render(template, variables(rule, inst, state, grafana_url))
    return ""


def message(
    rule: Rule,
    inst: AlertInstance,
    kind: NotificationKind,
    now: int,
    started: int | None,
    grafana_url: str,
) -> Message:
    """The notification of `kind` for `inst`; `started` is when its firing began."""
    state = RESOLVED if kind == NotificationKind.RESOLVED else FIRING
    values = variables(rule, inst, state, grafana_url)
    text = summary(rule, inst, state, grafana_url)
    extra = [render(t, values) for k, t in rule.annotations if k in ("description", "runbook")]
    return compose(
        alert=rule.alert,
        state=state,
        severity=inst.severity,
        labels=dict(inst.labels),
        value=inst.value,
        threshold=inst.threshold,
        op=rule.op,
        summary="\n".join([text, *extra]),
        started_ms=started or now,
        now_ms=now,
        grafana=str(values["grafana"]),
        renotify=kind == NotificationKind.RENOTIFY,
    )
