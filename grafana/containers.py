"""Containers on one host (`host`, `container` variables): CPU, memory, I/O, restarts, state."""

from __future__ import annotations

from grafana import flux
from grafana.contract import DATASOURCE, Inputs
from grafana.flux import HOST_IS
from grafana.host import alert_annotation, host_variable
from grafana.panels import (
    DASHED,
    JSON,
    NEGATIVE_Y,
    NO_FILL,
    Layout,
    by_regexp,
    dashboard,
    query_variable,
    stat,
    table,
    target,
    timeseries,
)

WHERE = HOST_IS + " and r.container =~ /^${container:regex}$/"
NAMED = "${__field.labels.container} ${__field.labels.series}"


def _rate(
    inputs: Inputs, title: str, pair: tuple[str, str], names: tuple[str, str], unit: str
) -> JSON:
    return timeseries(
        title,
        [
            flux.counter_rate(
                inputs.buckets,
                list(pair),
                WHERE,
                ["container"],
                series=dict(zip(pair, names, strict=True)),
            )
        ],
        unit=unit,
        display_name=NAMED,
        description=f"{names[0]} up, {names[1]} down (negative).",
        overrides=[by_regexp(f".* {names[1]}$", NEGATIVE_Y)],
    )


def _state_table(inputs: Inputs) -> str:
    return (
        flux.tier_preamble(inputs.buckets)
        + 'gauge_field = if raw then "value" else "mean"\n\n'
        + flux.pipeline(
            "from(bucket: bucket)",
            [
                flux.RANGE,
                flux.measurement_filter(["container_info"], WHERE),
                "filter(fn: (r) => r._field == gauge_field)",
                "last()",
                # state and health are tags, so a change starts a new series: keep the newest.
                'group(columns: ["container"])',
                'sort(columns: ["_time"])',
                "last()",
                "group()",
                'keep(columns: ["container", "state", "health", "image", "compose_project", '
                '"compose_service", "_time"])',
                'rename(columns: {_time: "last seen"})',
                'sort(columns: ["container"])',
            ],
        )
    )


def _restarts_in_range(inputs: Inputs) -> str:
    return (
        flux.tier_preamble(inputs.buckets)
        + 'counter_field = if raw then "value" else "last"\n\n'
        + flux.pipeline(
            "from(bucket: bucket)",
            [
                flux.RANGE,
                flux.measurement_filter(["container_restarts_total"], WHERE),
                "filter(fn: (r) => r._field == counter_field)",
                "spread()",
                "group()",
                "sum()",
            ],
        )
    )


def _running(inputs: Inputs, running: bool) -> str:
    return flux.latest_gauge(
        inputs.buckets,
        "container_up",
        WHERE,
        group_by=["container"],
        reduce="last",
        then=[
            f"filter(fn: (r) => r._value {'==' if running else '<'} 1.0)",
            "group()",
            "count()",
        ],
    )


def build(inputs: Inputs) -> JSON:
    b = inputs.buckets
    layout = Layout()
    layout.row("Containers on ${host}")
    layout.add(
        stat("Running", _running(inputs, True), decimals=0, no_value="0", color_mode="none"), 4, 4
    )
    stopped = stat("Not running", _running(inputs, False), decimals=0, no_value="0")
    stopped["fieldConfig"]["defaults"]["thresholds"]["steps"].append({"color": "red", "value": 1})
    layout.add(stopped, 4, 4)
    restarts = stat("Restarts in range", _restarts_in_range(inputs), decimals=0, no_value="0")
    restarts["fieldConfig"]["defaults"]["thresholds"]["steps"].append(
        {"color": "orange", "value": 1}
    )
    layout.add(restarts, 4, 4)
    layout.add(
        table(
            "State", [_state_table(inputs)], sort_by=[{"displayName": "container", "desc": False}]
        ),
        12,
        8,
    )
    layout.add(
        {
            "type": "state-timeline",
            "title": "Running",
            "description": "`container_up`: 1 running, 0 otherwise.",
            "datasource": DATASOURCE,
            "targets": [
                target(
                    flux.gauge(
                        b, ["container_up"], WHERE, ["container"], rollup="min", window_fn="min"
                    )
                )
            ],
            "fieldConfig": {
                "defaults": {
                    "displayName": "${__field.labels.container}",
                    "color": {"mode": "thresholds"},
                    "thresholds": {
                        "mode": "absolute",
                        "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
                    },
                    "mappings": [
                        {
                            "type": "value",
                            "options": {
                                "0": {"text": "stopped", "color": "red", "index": 0},
                                "1": {"text": "running", "color": "green", "index": 1},
                            },
                        }
                    ],
                },
                "overrides": [],
            },
            "options": {"showValue": "never", "mergeValues": True, "rowHeight": 0.8},
        },
        12,
        4,
    )

    layout.row("Resources")
    layout.add(
        timeseries(
            "CPU",
            [flux.gauge(b, ["container_cpu_usage_percent"], WHERE, ["container"])],
            unit="percent",
            min_value=0,
            display_name="${__field.labels.container}",
            description="`container_cpu_usage_percent`, as docker stats: 100 = one full core.",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Memory against limit",
            [
                flux.gauge(
                    b,
                    ["container_memory_usage_bytes", "container_memory_limit_bytes"],
                    WHERE,
                    ["container"],
                    series={
                        "container_memory_usage_bytes": "used",
                        "container_memory_limit_bytes": "limit",
                    },
                )
            ],
            unit="bytes",
            min_value=0,
            display_name=NAMED,
            description="Usage minus inactive file cache (as docker stats); dashed: the limit.",
            overrides=[by_regexp(".* limit$", DASHED, NO_FILL)],
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Memory % of limit",
            [flux.gauge(b, ["container_memory_usage_percent"], WHERE, ["container"])],
            unit="percent",
            min_value=0,
            max_value=100,
            level=inputs.level("container_memory") or inputs.level("memory"),
            display_name="${__field.labels.container}",
            description="Dashed lines: the container_memory levels of rules/thresholds.yaml.",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Processes",
            [flux.gauge(b, ["container_pids"], WHERE, ["container"])],
            unit="short",
            min_value=0,
            display_name="${__field.labels.container}",
        ),
        12,
        8,
    )

    layout.row("I/O and restarts")
    layout.add(
        _rate(
            inputs,
            "Network",
            ("container_network_receive_bytes_total", "container_network_transmit_bytes_total"),
            ("receive", "transmit"),
            "Bps",
        ),
        8,
        8,
    )
    layout.add(
        _rate(
            inputs,
            "Block I/O",
            ("container_block_read_bytes_total", "container_block_written_bytes_total"),
            ("read", "write"),
            "Bps",
        ),
        8,
        8,
    )
    layout.add(
        timeseries(
            "Restarts",
            [flux.counter_value(b, ["container_restarts_total"], WHERE, ["container"])],
            unit="short",
            min_value=0,
            display_name="${__field.labels.container}",
            description="`container_restarts_total`: a step up is a restart.",
        ),
        8,
        8,
    )
    return dashboard(
        "containers",
        "FleetPulse / Containers",
        "Containers on one host: state, CPU, memory against limit, network, block I/O, restarts.",
        layout.panels,
        variables=[
            host_variable(inputs),
            query_variable(
                "container",
                "Container",
                flux.tag_values(b, "container_info", "container", HOST_IS),
                multi=True,
                include_all=True,
            ),
        ],
        annotations=[
            alert_annotation(
                inputs,
                HOST_IS + " and (not exists r.container or r.container =~ /^${container:regex}$/)",
            )
        ],
    )
