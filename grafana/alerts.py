"""Alerts: what is firing now and the history of alert events, filtered by host and severity."""

from __future__ import annotations

from grafana import events, flux
from grafana.contract import Inputs
from grafana.overview import HOST_LINK
from grafana.panels import (
    CRITICAL_COLOR,
    JSON,
    STATE_MAPPINGS,
    WARNING_COLOR,
    Layout,
    by_name,
    custom_variable,
    dashboard,
    query_variable,
    stat,
    table,
)

WHERE = "r.host =~ /^${host:regex}$/ and r.severity =~ /^${severity:regex}$/"
SEVERITIES = ("warning", "critical")


def _event_columns() -> list[JSON]:
    coloured = {"type": "color-text"}
    return [
        by_name("_time", ("displayName", "Time"), ("custom.width", 180)),
        by_name(
            "state",
            ("displayName", "State"),
            ("mappings", STATE_MAPPINGS),
            ("custom.cellOptions", coloured),
            ("custom.width", 100),
        ),
        by_name(
            "severity",
            ("displayName", "Severity"),
            ("mappings", STATE_MAPPINGS),
            ("custom.cellOptions", coloured),
            ("custom.width", 100),
        ),
        by_name("alertname", ("displayName", "Alert"), ("custom.width", 200)),
        by_name("host", ("displayName", "Host"), ("links", [HOST_LINK]), ("custom.width", 160)),
        by_name("value", ("displayName", "Value"), ("decimals", 2), ("custom.width", 100)),
        by_name("threshold", ("displayName", "Threshold"), ("decimals", 2), ("custom.width", 100)),
        by_name("summary", ("displayName", "Summary")),
    ]


def build(inputs: Inputs) -> JSON:
    b = inputs.buckets
    layout = Layout()
    layout.row("Now")
    for state, color in (("firing", CRITICAL_COLOR), ("pending", WARNING_COLOR)):
        panel = stat(
            state.capitalize(),
            events.active_count(b, WHERE, state),
            decimals=0,
            no_value="0",
            description=f"Alert instances whose latest event is `{state}`.",
        )
        panel["fieldConfig"]["defaults"]["thresholds"]["steps"].append({"color": color, "value": 1})
        layout.add(panel, 4, 8)
    layout.add(
        table(
            "Active alerts",
            [events.active_alerts(b, WHERE)],
            overrides=_event_columns(),
            description="Alert instances whose latest transition (looking back 30 days, as "
            "the API's /api/v1/alerts does) is firing or pending.",
        ),
        16,
        8,
    )
    layout.row("History")
    layout.add(
        table(
            "Alert events",
            [events.alert_history(b, WHERE)],
            overrides=_event_columns(),
            description="Every alert event in the range, newest first (measurement alert_events). "
            "Export with panel menu > Inspect > Data > Download CSV.",
        ),
        24,
        14,
    )
    return dashboard(
        "alerts",
        "FleetPulse / Alerts",
        "Active alerts and alert history from the alert engine's events.",
        layout.panels,
        variables=[
            query_variable(
                "host", "Host", flux.tag_values(b, "up", "host"), multi=True, include_all=True
            ),
            custom_variable("severity", "Severity", SEVERITIES),
        ],
        time_from="now-7d",
    )
