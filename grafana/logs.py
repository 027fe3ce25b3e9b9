"""Agent logs: the exporters' own log lines (measurement agent_logs) with level and text filters."""

from __future__ import annotations

from grafana import events, flux
from grafana.contract import DATASOURCE, LOG_LEVELS, Inputs
from grafana.panels import (
    JSON,
    Layout,
    by_name,
    custom_variable,
    dashboard,
    query_variable,
    target,
    textbox_variable,
    timeseries,
)

# Levels are matched without regard to case: Python logs "WARNING", people type "warning".
WHERE = "r.host =~ /^${host:regex}$/ and r.level =~ /(?i)^${level:regex}$/"
LEVEL_COLORS = {
    "debug": "blue",
    "info": "green",
    "warning": "orange",
    "error": "red",
    "critical": "dark-red",
}


def build(inputs: Inputs) -> JSON:
    b = inputs.buckets
    layout = Layout()
    volume = timeseries(
        "Log lines by level",
        [events.log_volume(b, WHERE)],
        unit="short",
        stack=True,
        display_name="${__field.labels.level}",
        overrides=[
            by_name(level, ("color", {"mode": "fixed", "fixedColor": color}))
            for level, color in LEVEL_COLORS.items()
        ],
    )
    volume["fieldConfig"]["defaults"]["custom"] |= {"drawStyle": "bars", "fillOpacity": 80}
    layout.add(volume, 24, 6)
    layout.add(
        {
            "type": "logs",
            "title": "Exporter logs",
            "description": "Newest first, at most 2000 lines; narrow the range or filter to see "
            "older ones. The text filter matches without regard to case.",
            "datasource": DATASOURCE,
            "targets": [target(events.agent_logs(b, WHERE))],
            "options": {
                "showTime": True,
                "showLabels": True,
                "showCommonLabels": False,
                "wrapLogMessage": True,
                "prettifyLogMessage": False,
                "enableLogDetails": True,
                "dedupStrategy": "none",
                "sortOrder": "Descending",
            },
        },
        24,
        20,
    )
    return dashboard(
        "logs",
        "FleetPulse / Agent logs",
        "The exporters' own log lines, by host and level, with a text filter.",
        layout.panels,
        variables=[
            query_variable(
                "host", "Host", flux.tag_values(b, "up", "host"), multi=True, include_all=True
            ),
            custom_variable("level", "Level", LOG_LEVELS),
            textbox_variable("search", "Text"),
        ],
        time_from="now-6h",
    )
