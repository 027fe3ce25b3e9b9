"""Fleet overview: every host at a glance, coloured against its thresholds, with alert counts."""

from __future__ import annotations

from fleetpulse.core.thresholds import CUSTOMIZED_SERIES, THRESHOLD_METRICS, THRESHOLD_SERIES
from grafana import events, flux
from grafana.contract import Inputs
from grafana.flux import HOSTS_MATCH
from grafana.panels import (
    CRITICAL_COLOR,
    JSON,
    OK_COLOR,
    UP_MAPPINGS,
    WARNING_COLOR,
    Layout,
    by_name,
    dashboard,
    dashboard_link,
    query_variable,
    stat,
    table,
    threshold_steps,
    timeseries,
)

STATUS_MAPPINGS: list[JSON] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "OK", "color": OK_COLOR, "index": 0},
            "1": {"text": "WARNING", "color": WARNING_COLOR, "index": 1},
            "2": {"text": "CRITICAL", "color": CRITICAL_COLOR, "index": 2},
            "3": {"text": "DOWN", "color": "dark-red", "index": 3},
        },
    }
]
THRESHOLDS_MAPPINGS: list[JSON] = [
    {
        "type": "value",
        "options": {
            "custom": {"text": "custom", "color": "blue", "index": 0},
            "default": {"text": "default", "color": "text", "index": 1},
        },
    }
]
HOST_LINK = {
    "title": "Host detail for ${__value.raw}",
    "url": dashboard_link("host", "var-host=${__value.raw}"),
}
HOST_VAR_LINK = {"title": "Host detail", "url": dashboard_link("host", "var-host=${host}")}


def host_status(inputs: Inputs, where: str) -> str:
    """One row per host: up, latest cpu/memory/disk (fullest), status and thresholds marker.

    `status` rates each host against its effective levels as the collector publishes them
    (`fleetpulse_threshold`: rules/thresholds.yaml with the console's overrides; 0 ok,
    1 warning, 2 critical, 3 down); `thresholds` is "custom" where they differ from the
    defaults (`fleetpulse_thresholds_customized`).
    """
    parts = [
        ("up", 'r._measurement == "up"'),
        *((key, f'r._measurement == "{metric}"') for key, metric in THRESHOLD_METRICS.items()),
        *(
            (
                f"{key}_{which}",
                f'r._measurement == "{THRESHOLD_SERIES}" and r.key == "{key}" '
                f'and r.level == "{which}"',
            )
            for key in THRESHOLD_METRICS
            for which in ("warning", "critical")
        ),
        ("customized", f'r._measurement == "{CUSTOMIZED_SERIES}"'),
    ]
    unions = ",\n".join(
        f'        data |> filter(fn: (r) => {predicate}) |> latest_of(name: "{name}")'
        for name, predicate in parts
    )
    levels = "\n".join(
        f"            {key} = if exists r.{key} and exists r.{key}_warning then level(value: r.{key}, "
        f"warning: r.{key}_warning, critical: r.{key}_critical) else 0"
        for key in THRESHOLD_METRICS
    )
    return (
        flux.tier_preamble(inputs.buckets)
        + 'gauge_field = if raw then "value" else "mean"\n'
        + "level = (value, warning, critical) =>\n"
        + "    if value > critical then 2 else if value > warning then 1 else 0\n"
        + "worst = (a, b) => if a > b then a else b\n"
        + "latest_of = (tables=<-, name) =>\n"
        + "    tables\n"
        + "        |> filter(fn: (r) => r._field == gauge_field)\n"
        + "        |> last()\n"
        + '        |> group(columns: ["host"])\n'
        + "        |> max()\n"
        + "        |> map(fn: (r) => ({host: r.host, _field: name, _value: r._value}))\n\n"
        + "data =\n"
        + "    from(bucket: bucket)\n"
        + f"        |> {flux.RANGE}\n"
        + f"        |> filter(fn: (r) => {where})\n\n"
        + "union(\n"
        + "    tables: [\n"
        + unions
        + ",\n    ],\n)\n"
        + "    |> group()\n"
        + '    |> pivot(rowKey: ["host"], columnKey: ["_field"], valueColumn: "_value")\n'
        + "    |> map(\n"
        + "        fn: (r) => {\n"
        + levels
        + "\n"
        + "            worst_level = worst(a: cpu, b: worst(a: memory, b: disk))\n"
        + "            status = if exists r.up and r.up < 1.0 then 3 else worst_level\n"
        + "            custom = exists r.customized and r.customized > 0.0\n"
        + '            marker = if custom then "custom" else "default"\n\n'
        + "            return {r with status: status, thresholds: marker}\n"
        + "        },\n"
        + "    )\n"
        + '    |> keep(columns: ["host", "status", "up", "cpu", "memory", "disk", "thresholds"])\n'
        + '    |> sort(columns: ["host"])\n'
    )


def _percent_column(inputs: Inputs, key: str, title: str) -> JSON:
    return by_name(
        key,
        ("displayName", title),
        ("unit", "percent"),
        ("decimals", 1),
        ("thresholds", threshold_steps(inputs.level(key))),
        ("custom.cellOptions", {"type": "color-background", "mode": "basic"}),
    )


def _hosts_table(inputs: Inputs) -> JSON:
    overrides = [
        by_name("host", ("displayName", "Host"), ("links", [HOST_LINK])),
        by_name(
            "status",
            ("displayName", "Status"),
            ("mappings", STATUS_MAPPINGS),
            ("custom.cellOptions", {"type": "color-background", "mode": "basic"}),
        ),
        by_name(
            "up",
            ("displayName", "Up"),
            ("mappings", UP_MAPPINGS),
            ("custom.cellOptions", {"type": "color-text"}),
        ),
        _percent_column(inputs, "cpu", "CPU"),
        _percent_column(inputs, "memory", "Memory"),
        _percent_column(inputs, "disk", "Fullest disk"),
        by_name(
            "thresholds",
            ("displayName", "Thresholds"),
            ("mappings", THRESHOLDS_MAPPINGS),
            ("custom.cellOptions", {"type": "color-text"}),
        ),
    ]
    order = ["host", "status", "up", "cpu", "memory", "disk", "thresholds"]
    return table(
        "Hosts",
        [host_status(inputs, HOSTS_MATCH)],
        overrides=overrides,
        transformations=[
            {
                "id": "organize",
                "options": {"indexByName": {name: i for i, name in enumerate(order)}},
            }
        ],
        sort_by=[{"displayName": "Status", "desc": True}],
        description=(
            "Status uses each host's own levels (rules/thresholds.yaml with the overrides set "
            "in the console, as the collector publishes them); CPU/memory/disk colours use the "
            "defaults. Thresholds says custom where a host's levels differ from the defaults. "
            "Click a host for its detail dashboard."
        ),
    )


def _by_host(inputs: Inputs, title: str, metric: str, key: str) -> JSON:
    # Several mounts per host: keep the fullest in each window.
    query = flux.gauge(
        inputs.buckets, [metric], HOSTS_MATCH, ["host"], window_fn="max", merge_fn="max"
    )
    panel = timeseries(
        title,
        [query],
        unit="percent",
        min_value=0,
        max_value=100,
        level=inputs.level(key),
        display_name="${__field.labels.host}",
        description=f"`{metric}` per host (the highest series per host); dashed: default levels.",
    )
    panel["options"]["legend"]["calcs"] = ["lastNotNull", "max"]
    return panel


def build(inputs: Inputs) -> JSON:
    b = inputs.buckets
    layout = Layout()
    layout.row("Fleet")
    hosts_up = flux.latest_gauge(
        b,
        "up",
        HOSTS_MATCH,
        group_by=["host"],
        then=["filter(fn: (r) => r._value >= 1.0)", "group()", "count()"],
    )
    hosts_down = flux.latest_gauge(
        b,
        "up",
        HOSTS_MATCH,
        group_by=["host"],
        then=["filter(fn: (r) => r._value < 1.0)", "group()", "count()"],
    )
    layout.add(stat("Hosts up", hosts_up, decimals=0, no_value="0", color_mode="none"), 6, 4)
    down = stat("Hosts down", hosts_down, decimals=0, no_value="0")
    down["fieldConfig"]["defaults"]["thresholds"]["steps"].append({"color": "red", "value": 1})
    layout.add(down, 6, 4)
    alerts_link = {"title": "Alerts", "url": dashboard_link("alerts", "var-host=All")}
    for state, color in (("firing", CRITICAL_COLOR), ("pending", WARNING_COLOR)):
        panel = stat(
            f"Alerts {state}",
            events.active_count(b, HOSTS_MATCH, state),
            decimals=0,
            no_value="0",
            links=[alerts_link],
            description=f"Alert instances whose latest event is `{state}` (alert_events).",
        )
        panel["fieldConfig"]["defaults"]["thresholds"]["steps"].append({"color": color, "value": 1})
        layout.add(panel, 6, 4)
    layout.add(_hosts_table(inputs), 24, 9)
    layout.add(_by_host(inputs, "CPU by host", "host_cpu_usage_percent", "cpu"), 8, 8)
    layout.add(_by_host(inputs, "Memory by host", "host_memory_usage_percent", "memory"), 8, 8)
    layout.add(_by_host(inputs, "Fullest disk by host", "host_disk_usage_percent", "disk"), 8, 8)

    # One row per host (repeated for each selected host), sparklines of the range.
    layout.row("${host}")
    layout.panels[-1]["repeat"] = "host"
    one_host = flux.HOST_IS
    status = stat(
        "Status",
        host_status(inputs, one_host) + '    |> keep(columns: ["status"])\n',
        mappings=STATUS_MAPPINGS,
        links=[HOST_VAR_LINK],
        description="This host's own levels (thresholds.yaml with its overrides), or DOWN.",
    )
    layout.add(status, 4, 4)
    for key, metric in THRESHOLD_METRICS.items():
        title = {"cpu": "CPU", "memory": "Memory", "disk": "Fullest disk"}[key]
        query = flux.gauge(b, [metric], one_host, window_fn="max", rollup="max", merge_fn="max")
        layout.add(
            stat(
                title,
                query,
                unit="percent",
                level=inputs.level(key),
                sparkline=True,
                links=[HOST_VAR_LINK],
                description=f"`{metric}` (latest, and its history as a sparkline).",
            ),
            5,
            4,
        )
    marker = stat(
        "Thresholds",
        host_status(inputs, one_host) + '    |> keep(columns: ["thresholds"])\n',
        mappings=THRESHOLDS_MAPPINGS,
        color_mode="value",
        description="custom: a host glob in thresholds.yaml or an override set in the console "
        "changes this host's levels.",
    )
    marker["options"]["reduceOptions"]["fields"] = "/^thresholds$/"  # a text field
    layout.add(marker, 5, 4)
    return dashboard(
        "overview",
        "FleetPulse / Fleet overview",
        "Every host: up/down, CPU, memory and disk against thresholds, active alerts.",
        layout.panels,
        variables=[
            query_variable(
                "host", "Host", flux.tag_values(b, "up", "host"), multi=True, include_all=True
            )
        ],
    )
