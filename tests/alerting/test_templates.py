"""Notification text: sandboxed templates and concise titles and bodies."""

from __future__ import annotations

import pytest

from alerting.severity import Severity
from alerting.state import FIRING, RESOLVED
from alerting.templates import compile_template, compose, dashboard_link, render


def test_templates_render_in_a_sandbox() -> None:
    # the sandbox hides Python internals: the unsafe attribute renders as nothing
    template = compile_template("[{{ labels.__class__.__mro__ }}]")
    assert render(template, {"labels": {"host": "a"}}) == "[]"
    # a runtime error becomes text in the message instead of a lost notification
    assert render(compile_template("{{ 1 / value }}"), {"value": 0}).startswith(
        "(template error: division by zero"
    )
    assert render(compile_template("{{ value | round(1) }}%"), {"value": 91.26}) == "91.3%"


def test_firing_message_names_severity_alert_host_value_and_dashboard() -> None:
    message = compose(
        alert="CpuHigh",
        state=FIRING,
        severity=Severity.CRITICAL,
        labels={"host": "web 1", "job": "j", "alertname": "CpuHigh"},
        value=91.26,
        threshold=85,
        op=">",
        summary="CPU on web 1 at 91.3%",
        started_ms=1_800_000_000_000,
        now_ms=1_800_000_060_000,
        grafana=dashboard_link("http://grafana:3000", "web 1"),
    )
    assert message.title == "[CRITICAL] CpuHigh on web 1"
    assert message.body.splitlines() == [
        "CPU on web 1 at 91.3%",
        "Value 91.26 > 85 since 2027-01-15T08:00:00Z.",
        "Labels: alertname=CpuHigh, host=web 1",
        "Dashboard: http://grafana:3000/d/fleetpulse-host/fleetpulse-host?var-host=web%201",
    ]


def test_resolved_message_says_how_long_it_fired() -> None:
    message = compose(
        alert="CpuHigh",
        state=RESOLVED,
        severity=Severity.WARNING,
        labels={"host": "a"},
        value=12.0,
        threshold=70,
        op=">",
        summary="",
        started_ms=1_800_000_000_000,
        now_ms=1_800_000_000_000 + 754_000,
        grafana="",
    )
    assert message.title == "[RESOLVED] CpuHigh on a"
    assert message.body.splitlines()[0] == (
        "Resolved after firing for 12m34s (since 2027-01-15T08:00:00Z); value now 12."
    )


@pytest.mark.parametrize(
    ("fired_ms", "shown"), [(14_999, "15s"), (150_400, "2m30s"), (3_929_000, "1h5m")]
)
def test_resolved_message_rounds_how_long_it_fired_for_people(fired_ms: int, shown: str) -> None:
    message = compose(
        alert="CpuHigh",
        state=RESOLVED,
        severity=Severity.WARNING,
        labels={"host": "a"},
        value=12.0,
        threshold=70,
        op=">",
        summary="",
        started_ms=1_800_000_000_000,
        now_ms=1_800_000_000_000 + fired_ms,
        grafana="",
    )
    assert message.body.splitlines()[0].startswith(f"Resolved after firing for {shown} (since ")
