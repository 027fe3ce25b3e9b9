"""Dashboard JSON pieces (Grafana 11, schemaVersion 39): panels, targets, variables, layout.

Plain dicts on purpose: the output is JSON, and the tests read it back as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fleetpulse.core.thresholds import Level
from grafana.contract import DASHBOARD_UIDS, DATASOURCE

JSON = dict[str, Any]
SCHEMA_VERSION = 39
GRID_WIDTH = 24
OK_COLOR, WARNING_COLOR, CRITICAL_COLOR = "green", "orange", "red"


def target(query: str, ref_id: str = "A") -> JSON:
    return {"datasource": DATASOURCE, "refId": ref_id, "query": query}


def threshold_steps(level: Level | None) -> JSON:
    """Green below warning, orange from warning, red from critical (rules/thresholds.yaml)."""
    steps: list[JSON] = [{"color": OK_COLOR, "value": None}]
    if level is not None:
        steps += [
            {"color": WARNING_COLOR, "value": level.warning},
            {"color": CRITICAL_COLOR, "value": level.critical},
        ]
    return {"mode": "absolute", "steps": steps}


def by_name(name: str, *properties: tuple[str, Any]) -> JSON:
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key, "value": value} for key, value in properties],
    }


def by_regexp(pattern: str, *properties: tuple[str, Any]) -> JSON:
    return {
        "matcher": {"id": "byRegexp", "options": pattern},
        "properties": [{"id": key, "value": value} for key, value in properties],
    }


NEGATIVE_Y = ("custom.transform", "negative-Y")
DASHED = ("custom.lineStyle", {"fill": "dash", "dash": [10, 10]})
NO_FILL = ("custom.fillOpacity", 0)


def dashboard_link(kind: str, params: str) -> str:
    """A URL to another FleetPulse dashboard that keeps the time range."""
    return f"/d/{DASHBOARD_UIDS[kind]}?{params}&${{__url_time_range}}"


def timeseries(
    title: str,
    queries: Sequence[str],
    *,
    unit: str,
    display_name: str = "",
    description: str = "",
    level: Level | None = None,
    stack: bool = False,
    overrides: Sequence[JSON] = (),
    min_value: float | None = None,
    max_value: float | None = None,
    axis_label: str = "",
) -> JSON:
    custom: JSON = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 25 if stack else 10,
        "showPoints": "never",
        "spanNulls": False,
        "axisLabel": axis_label,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        # Threshold lines only where the panel has levels from rules/thresholds.yaml.
        "thresholdsStyle": {"mode": "dashed" if level is not None else "off"},
    }
    defaults: JSON = {
        "unit": unit,
        "color": {"mode": "palette-classic"},
        "custom": custom,
        "thresholds": threshold_steps(level),
    }
    if display_name:
        defaults["displayName"] = display_name
    if min_value is not None:
        defaults["min"] = min_value
    if max_value is not None:
        defaults["max"] = max_value
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target(q, chr(ord("A") + i)) for i, q in enumerate(queries)],
        "fieldConfig": {"defaults": defaults, "overrides": list(overrides)},
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "calcs": ["mean", "max", "lastNotNull"],
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(
    title: str,
    query: str,
    *,
    unit: str = "none",
    level: Level | None = None,
    sparkline: bool = False,
    mappings: Sequence[JSON] = (),
    description: str = "",
    color_mode: str = "background",
    decimals: int | None = None,
    links: Sequence[JSON] = (),
    no_value: str | None = None,
) -> JSON:
    defaults: JSON = {
        "unit": unit,
        "color": {"mode": "thresholds"},
        "thresholds": threshold_steps(level),
        "mappings": list(mappings),
        "links": list(links),
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    if no_value is not None:
        defaults["noValue"] = no_value
    if unit == "percent":
        defaults.update(min=0, max=100)
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target(query)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": color_mode,
            "graphMode": "area" if sparkline else "none",
            "textMode": "value",
            "justifyMode": "auto",
            "orientation": "auto",
        },
    }


def table(
    title: str,
    queries: Sequence[str],
    *,
    overrides: Sequence[JSON] = (),
    transformations: Sequence[JSON] = (),
    sort_by: Sequence[JSON] = (),
    description: str = "",
) -> JSON:
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target(q, chr(ord("A") + i)) for i, q in enumerate(queries)],
        "fieldConfig": {
            "defaults": {
                "custom": {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True},
                "thresholds": threshold_steps(None),
            },
            "overrides": list(overrides),
        },
        "transformations": list(transformations),
        "options": {"showHeader": True, "cellHeight": "sm", "sortBy": list(sort_by)},
    }


def row(title: str) -> JSON:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


STATE_MAPPINGS: list[JSON] = [
    {
        "type": "value",
        "options": {
            "firing": {"text": "FIRING", "color": CRITICAL_COLOR, "index": 0},
            "pending": {"text": "pending", "color": WARNING_COLOR, "index": 1},
            "resolved": {"text": "resolved", "color": OK_COLOR, "index": 2},
            "critical": {"text": "critical", "color": CRITICAL_COLOR, "index": 3},
            "warning": {"text": "warning", "color": WARNING_COLOR, "index": 4},
        },
    }
]
UP_MAPPINGS: list[JSON] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "DOWN", "color": CRITICAL_COLOR, "index": 0},
            "1": {"text": "UP", "color": OK_COLOR, "index": 1},
        },
    },
    {"type": "special", "options": {"match": "null", "result": {"text": "no data", "index": 2}}},
]


@dataclass
class Layout:
    """Places panels left to right in rows of 24 columns and numbers them."""

    panels: list[JSON] = field(default_factory=list)
    x: int = 0
    y: int = 0
    row_height: int = 0

    def _newline(self) -> None:
        self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def add(self, panel: JSON, width: int, height: int) -> JSON:
        if self.x + width > GRID_WIDTH:
            self._newline()
        placed = {"id": len(self.panels) + 1, "gridPos": _grid(self.x, self.y, width, height)}
        placed |= panel
        self.panels.append(placed)
        self.x += width
        self.row_height = max(self.row_height, height)
        return placed

    def row(self, title: str) -> None:
        """A row header across the full width; following panels start below it."""
        if self.x:
            self._newline()
        self.panels.append({"id": len(self.panels) + 1, "gridPos": _grid(0, self.y, 24, 1)})
        self.panels[-1] |= row(title)
        self.y += 1


def _grid(x: int, y: int, w: int, h: int) -> JSON:
    return {"x": x, "y": y, "w": w, "h": h}


def dashboard(
    kind: str,
    title: str,
    description: str,
    panels: Sequence[JSON],
    *,
    variables: Sequence[JSON] = (),
    annotations: Sequence[JSON] = (),
    time_from: str = "now-24h",
) -> JSON:
    return {
        "uid": DASHBOARD_UIDS[kind],
        "title": title,
        "description": description,
        "tags": ["fleetpulse"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 2,  # shared tooltip: hovering one panel shows the same time everywhere
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {"refresh_intervals": ["15s", "30s", "1m", "5m", "15m", "1h"]},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [
            {
                "title": "FleetPulse",
                "type": "dashboards",
                "tags": ["fleetpulse"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "targetBlank": False,
                "icon": "external link",
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": list(variables)},
        "annotations": {"list": list(annotations)},
        "panels": list(panels),
    }


def query_variable(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = False,
    include_all: bool = False,
) -> JSON:
    """A variable filled by a Flux query, refreshed when the time range changes."""
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": include_all,
        "allValue": ".*" if include_all else None,
        "current": {},
        "options": [],
        "hide": 0,
        "regex": "",
    }


def custom_variable(name: str, label: str, values: Sequence[str]) -> JSON:
    """A multi-select of fixed values, All by default (matched as a regex)."""
    return {
        "type": "custom",
        "name": name,
        "label": label,
        "query": ",".join(values),
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }


def textbox_variable(name: str, label: str) -> JSON:
    return {
        "type": "textbox",
        "name": name,
        "label": label,
        "query": "",
        "current": {"text": "", "value": ""},
        "hide": 0,
    }


def annotation(name: str, query: str, color: str) -> JSON:
    """Events from a Flux query; the `text` column is the text, `alertname` the tag."""
    return {
        "name": name,
        "enable": True,
        "hide": False,
        "iconColor": color,
        "datasource": DATASOURCE,
        "target": {"refId": "Anno", "query": query},
        "mappings": {
            "time": {"source": "field", "value": "_time"},
            "text": {"source": "field", "value": "text"},
            "tags": {"source": "field", "value": "tags"},
        },
    }
