"""Host detail: one host (`host` variable), every family the exporter collects, with units."""

from __future__ import annotations

from fleetpulse.core.thresholds import THRESHOLD_METRICS, THRESHOLD_SERIES
from grafana import events, flux
from grafana.contract import Inputs
from grafana.flux import HOST_IS
from grafana.panels import (
    DASHED,
    JSON,
    NEGATIVE_Y,
    NO_FILL,
    UP_MAPPINGS,
    Layout,
    annotation,
    by_name,
    by_regexp,
    dashboard,
    query_variable,
    stat,
    table,
    threshold_steps,
    timeseries,
)

LABEL = "${__field.labels.%s}"


def host_variable(inputs: Inputs) -> JSON:
    return query_variable("host", "Host", flux.tag_values(inputs.buckets, "up", "host"))


def alert_annotation(inputs: Inputs, where: str = HOST_IS) -> JSON:
    return annotation("Alerts", events.alert_annotations(inputs.buckets, where), "red")


def threshold_overrides() -> list[JSON]:
    """The `warning`/`critical` lines of query B: dashed, coloured, named by level."""
    return [
        {
            "matcher": {"id": "byFrameRefID", "options": "B"},
            "properties": [
                {"id": "displayName", "value": "${__field.labels.level}"},
                {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                {"id": "custom.fillOpacity", "value": 0},
                {
                    "id": "custom.hideFrom",
                    "value": {"legend": False, "tooltip": True, "viz": False},
                },
            ],
        },
        by_name("warning", ("color", {"mode": "fixed", "fixedColor": "orange"})),
        by_name("critical", ("color", {"mode": "fixed", "fixedColor": "red"})),
    ]


def usage_panel(inputs: Inputs, title: str, key: str, labels: tuple[str, ...] = ()) -> JSON:
    """A percent gauge over time with this host's own warning/critical lines from Flux."""
    metric = THRESHOLD_METRICS[key]
    panel = timeseries(
        title,
        [
            flux.gauge(inputs.buckets, [metric], HOST_IS, labels),
            # the levels the collector publishes: thresholds.yaml with the API's overrides
            flux.gauge(
                inputs.buckets,
                [THRESHOLD_SERIES],
                f'{HOST_IS} and r.key == "{key}"',
                ["level"],
                rollup="max",
                window_fn="max",
            ),
        ],
        unit="percent",
        min_value=0,
        max_value=100,
        display_name=LABEL % labels[0] if labels else title,
        description=f"`{metric}`; dashed lines: this host's {key} levels as they were then "
        f"(`{THRESHOLD_SERIES}`: rules/thresholds.yaml with the overrides set in the console).",
        overrides=threshold_overrides(),
    )
    # The panel's own thresholds are the defaults (colours); the lines above are per host.
    panel["fieldConfig"]["defaults"]["thresholds"] = threshold_steps(inputs.level(key))
    return panel


def build(inputs: Inputs) -> JSON:
    b = inputs.buckets
    layout = Layout()
    layout.row("${host} now")
    layout.add(
        stat("Up", flux.latest_gauge(b, "up", HOST_IS), mappings=UP_MAPPINGS, decimals=0)
        | {"description": "`up`: the collector's latest scrape of this host succeeded."},
        3,
        4,
    )
    for title, key in (("CPU", "cpu"), ("Memory", "memory"), ("Fullest disk", "disk")):
        metric = THRESHOLD_METRICS[key]
        layout.add(
            stat(
                title,
                flux.gauge(b, [metric], HOST_IS, window_fn="max", rollup="max", merge_fn="max"),
                unit="percent",
                level=inputs.level(key),
                sparkline=True,
                description=f"`{metric}` (the highest series, the latest value and its "
                f"history) against the default {key} levels.",
            ),
            4,
            4,
        )
    layout.add(
        stat(
            "Load 1m", flux.latest_gauge(b, "host_load_average", f'{HOST_IS} and r.period == "1m"')
        )
        | {"description": '`host_load_average{period="1m"}`'},
        3,
        4,
    )
    layout.add(
        stat(
            "Booted",
            flux.latest_gauge(
                b,
                "host_boot_time_seconds",
                HOST_IS,
                then=["map(fn: (r) => ({r with _value: r._value * 1000.0}))"],
            ),
            unit="dateTimeFromNow",
            color_mode="none",
        ),
        3,
        4,
    )
    layout.add(
        stat(
            "CPUs", flux.latest_gauge(b, "host_cpu_logical_processors", HOST_IS), color_mode="none"
        ),
        3,
        4,
    )
    layout.add(
        table(
            "Identity",
            [
                flux.tier_preamble(b)
                + 'gauge_field = if raw then "value" else "mean"\n\n'
                + flux.pipeline(
                    "from(bucket: bucket)",
                    [
                        flux.RANGE,
                        flux.measurement_filter(["host_info"], HOST_IS),
                        "filter(fn: (r) => r._field == gauge_field)",
                        "last()",
                        "group()",
                        'sort(columns: ["_time"])',
                        "last()",
                        'keep(columns: ["hostname", "os", "os_version", "kernel", "arch", '
                        '"exporter_version"])',
                    ],
                )
            ],
        ),
        24,
        3,
    )

    layout.row("CPU and load")
    layout.add(usage_panel(inputs, "CPU usage", "cpu"), 12, 8)
    layout.add(
        timeseries(
            "CPU time by mode",
            [
                flux.counter_rate(
                    b, ["host_cpu_seconds_total"], f'{HOST_IS} and r.mode != "idle"', ["mode"]
                )
            ],
            unit="short",
            axis_label="cores busy",
            stack=True,
            display_name=LABEL % "mode",
            description="Per-second rate of `host_cpu_seconds_total` by mode (idle left out), "
            "summed over cores: 2 means two cores fully busy.",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Load average",
            [
                flux.gauge(b, ["host_load_average"], HOST_IS, ["period"]),
                flux.gauge(b, ["host_cpu_logical_processors"], HOST_IS),
            ],
            unit="short",
            display_name=LABEL % "period",
            description="`host_load_average` by period; dashed: logical CPUs.",
            overrides=[
                {
                    "matcher": {"id": "byFrameRefID", "options": "B"},
                    "properties": [
                        {"id": "displayName", "value": "CPUs"},
                        {"id": DASHED[0], "value": DASHED[1]},
                        {"id": NO_FILL[0], "value": NO_FILL[1]},
                    ],
                }
            ],
        ),
        12,
        8,
    )
    layout.add(usage_panel(inputs, "Memory usage", "memory"), 12, 8)

    layout.row("Memory")
    layout.add(
        timeseries(
            "Memory",
            [
                flux.gauge(
                    b,
                    [
                        "host_memory_used_bytes",
                        "host_memory_available_bytes",
                        "host_memory_total_bytes",
                    ],
                    HOST_IS,
                    series={
                        "host_memory_used_bytes": "used",
                        "host_memory_available_bytes": "available",
                        "host_memory_total_bytes": "total",
                    },
                )
            ],
            unit="bytes",
            min_value=0,
            display_name=LABEL % "series",
            overrides=[by_name("total", DASHED, NO_FILL)],
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Swap",
            [
                flux.gauge(
                    b,
                    ["host_swap_used_bytes", "host_swap_total_bytes"],
                    HOST_IS,
                    series={"host_swap_used_bytes": "used", "host_swap_total_bytes": "total"},
                )
            ],
            unit="bytes",
            min_value=0,
            display_name=LABEL % "series",
            overrides=[by_name("total", DASHED, NO_FILL)],
        ),
        12,
        8,
    )

    layout.row("Disks")
    layout.add(usage_panel(inputs, "Disk usage per mount", "disk", ("mountpoint",)), 12, 8)
    layout.add(
        timeseries(
            "Disk space used per mount",
            [flux.gauge(b, ["host_disk_used_bytes"], HOST_IS, ["mountpoint"])],
            unit="bytes",
            min_value=0,
            display_name=LABEL % "mountpoint",
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Disk throughput",
            [
                flux.counter_rate(
                    b,
                    ["host_disk_read_bytes_total", "host_disk_written_bytes_total"],
                    HOST_IS,
                    ["device"],
                    series={
                        "host_disk_read_bytes_total": "read",
                        "host_disk_written_bytes_total": "write",
                    },
                )
            ],
            unit="Bps",
            display_name="${__field.labels.device} ${__field.labels.series}",
            description="Reads up, writes down (negative).",
            overrides=[by_regexp_series("write")],
        ),
        12,
        8,
    )
    layout.add(
        timeseries(
            "Disk operations",
            [
                flux.counter_rate(
                    b,
                    ["host_disk_reads_total", "host_disk_writes_total"],
                    HOST_IS,
                    ["device"],
                    series={"host_disk_reads_total": "reads", "host_disk_writes_total": "writes"},
                )
            ],
            unit="iops",
            display_name="${__field.labels.device} ${__field.labels.series}",
            description="Reads up, writes down (negative).",
            overrides=[by_regexp_series("writes")],
        ),
        12,
        8,
    )

    layout.row("Network")
    for title, what, unit in (
        ("Network traffic", "bytes", "Bps"),
        ("Packets", "packets", "pps"),
    ):
        # network_bandwidth levels (bytes/s per interface) apply to the traffic panel only.
        level = inputs.level("network_bandwidth") if what == "bytes" else None
        layout.add(
            timeseries(
                title,
                [
                    flux.counter_rate(
                        b,
                        [f"network_receive_{what}_total", f"network_transmit_{what}_total"],
                        HOST_IS,
                        ["interface"],
                        series={
                            f"network_receive_{what}_total": "receive",
                            f"network_transmit_{what}_total": "transmit",
                        },
                    )
                ],
                unit=unit,
                level=level,
                display_name="${__field.labels.interface} ${__field.labels.series}",
                description="Receive up, transmit down (negative), per interface."
                + (" Dashed: the network_bandwidth levels." if level else ""),
                overrides=[by_regexp_series("transmit")],
            ),
            8,
            8,
        )
    problems = {
        f"network_{direction}_{what}_total": f"{direction} {what}"
        for direction in ("receive", "transmit")
        for what in ("errors", "drops")
    }
    layout.add(
        timeseries(
            "Errors and drops",
            [flux.counter_rate(b, list(problems), HOST_IS, ["interface"], series=problems)],
            unit="pps",
            display_name="${__field.labels.interface} ${__field.labels.series}",
        ),
        8,
        8,
    )

    layout.row("Collection")
    layout.add(
        timeseries(
            "Scrape duration",
            [
                flux.gauge(
                    b, ["scrape_duration_seconds"], HOST_IS, ["job"], rollup="max", window_fn="max"
                )
            ],
            unit="s",
            display_name=LABEL % "job",
        ),
        6,
        7,
    )
    layout.add(
        timeseries(
            "Samples per scrape",
            [flux.gauge(b, ["scrape_samples_scraped"], HOST_IS, ["job"])],
            unit="short",
            display_name=LABEL % "job",
        ),
        6,
        7,
    )
    layout.add(
        timeseries(
            "Exporter collection time",
            [flux.gauge(b, ["exporter_collect_duration_seconds"], HOST_IS, ["source"])],
            unit="s",
            display_name=LABEL % "source",
        ),
        6,
        7,
    )
    layout.add(
        timeseries(
            "Exporter collection errors",
            [flux.counter_rate(b, ["exporter_collect_errors_total"], HOST_IS, ["source"])],
            unit="reqps",
            display_name=LABEL % "source",
        ),
        6,
        7,
    )
    return dashboard(
        "host",
        "FleetPulse / Host detail",
        "One host: CPU, load, memory, disks, network and collection health.",
        layout.panels,
        variables=[host_variable(inputs)],
        annotations=[alert_annotation(inputs)],
    )


def by_regexp_series(name: str) -> JSON:
    """Draws the series whose name ends with `name` below the axis."""
    return by_regexp(f".* {name}$", NEGATIVE_Y)
