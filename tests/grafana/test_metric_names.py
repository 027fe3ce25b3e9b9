"""Every measurement, field and tag a dashboard query names exists in what FleetPulse writes.

Host and network metrics come from the exporter's real output (`fleetpulse exporter --once`
on this machine), `up`/`scrape_*` from the collector's synthetic series, container metrics
from the catalog (no container engine is needed for the names), fields from the storage
contract in DESIGN.md. Renaming a metric without updating the dashboards fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

import pytest

from collector.parse import parse_exposition
from fleetpulse.core.catalog import ALL, CONTAINER, SCRAPE
from fleetpulse.core.storage import AGENT_LOGS, ALERT_EVENTS
from grafana import flux
from tests.grafana.boards import DEFAULT_BUCKETS, every_query

# DESIGN.md "Storage": the raw field and the rollup fields per kind.
RAW_FIELD = "value"
GAUGE_ROLLUPS = {"mean", "min", "max", "count"}
COUNTER_ROLLUPS = {"last", "rate_mean", "rate_max"}
# What alerting/history.py and collector/logpull.py write (fields, and tags beyond the
# instance's own labels).
EVENT_FIELDS = {
    ALERT_EVENTS: {"state", "previous", "threshold", "summary", "value", "since_ms"},
    AGENT_LOGS: {"message", "seq"},
}
EVENT_TAGS = {
    # an alert instance carries its series' labels plus these
    ALERT_EVENTS: {"alertname", "severity", "event", "channel"}
    | {label for metric in ALL for label in metric.labels},
    AGENT_LOGS: {"level", "logger", "instance"},
}
TARGET_LABELS = {"host", "job"}  # the collector adds them to every sample and event

MEASUREMENT_RE = re.compile(r'r\._measurement == "([^"]+)"')
FIELD_RE = re.compile(r'r\._field == "([^"]+)"')
FIELD_CHOICE_RE = re.compile(r'^\w+_field = if raw then "(\w+)" else "(\w+)"$', re.MULTILINE)
FILTER_RE = re.compile(r"filter\(fn: \(r\) => (.*)\)$", re.MULTILINE)
PREDICATE_RE = re.compile(r"predicate: \(r\) => (.*?), start:")
TAG_VALUES_RE = re.compile(r'schema\.tagValues\(bucket: \w+, tag: "(\w+)"')
TAG_RE = re.compile(r"\br\.([A-Za-z]\w*)")


@dataclass(frozen=True)
class Written:
    """Measurement name -> (kind, label names) of everything FleetPulse writes."""

    metrics: dict[str, tuple[str, frozenset[str]]]


@pytest.fixture(scope="module")
def written() -> Written:
    proc = subprocess.run(
        [sys.executable, "-m", "fleetpulse", "exporter", "--once"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    kinds = {metric.name: metric.kind for metric in ALL}
    labels: dict[str, set[str]] = {}
    for sample in parse_exposition(proc.stdout):
        labels.setdefault(sample.name, set()).update(name for name, _ in sample.labels)
    for metric in (*SCRAPE, *CONTAINER):
        labels.setdefault(metric.name, set()).update(metric.labels)
    return Written(
        {
            name: (
                kinds.get(name, "counter" if name.endswith("_total") else "gauge"),
                frozenset(names),
            )
            for name, names in labels.items()
        }
    )


@dataclass(frozen=True)
class Problems:
    items: list[str]

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{where}: {what}")


def check_names(name: str, text: str, written: Written) -> list[str]:
    """What `text` names that nothing writes: measurements, fields, tags."""
    problems = Problems([])
    measurements = set(MEASUREMENT_RE.findall(text))
    fields = set(FIELD_RE.findall(text))
    choices = FIELD_CHOICE_RE.findall(text)
    events = measurements & set(EVENT_FIELDS)
    metrics = measurements - events
    if events and metrics:
        problems.add(name, "mixes event measurements and metrics")
    for measurement in sorted(metrics - set(written.metrics)):
        problems.add(name, f"measurement {measurement} is not written by the exporter or collector")
    known = [written.metrics[m] for m in metrics if m in written.metrics]
    allowed_tags = set(TARGET_LABELS)
    for event in events:
        for field in sorted(fields - EVENT_FIELDS[event]):
            problems.add(name, f"field {field} is not a field of {event}")
        allowed_tags |= EVENT_FIELDS[event] | EVENT_TAGS[event]
    for kind, labels in known:
        allowed_tags |= labels
        rollups = COUNTER_ROLLUPS if kind == "counter" else GAUGE_ROLLUPS
        for raw, rollup in choices:
            if raw != RAW_FIELD:
                problems.add(name, f"raw field {raw} is not {RAW_FIELD}")
            if rollup not in rollups:
                problems.add(
                    name, f"rollup field {rollup} is not one of a {kind}: {sorted(rollups)}"
                )
        for field in fields - {RAW_FIELD}:
            problems.add(name, f"field {field} is not the raw field {RAW_FIELD}")
    tag_values = TAG_VALUES_RE.findall(text)
    if metrics and not choices and not fields and not tag_values:
        problems.add(name, "names no field")
    used_tags = set(tag_values)
    for condition in FILTER_RE.findall(text) + PREDICATE_RE.findall(text):
        used_tags |= set(TAG_RE.findall(condition))
    for tag in sorted(used_tags - allowed_tags):
        problems.add(name, f"tag {tag} is not a label of {sorted(measurements)}")
    return problems.items


def test_every_measurement_field_and_tag_in_the_dashboards_is_written(written: Written) -> None:
    problems = [p for q in every_query() for p in check_names(q.name, q.text, written)]
    assert not problems, "\n".join(problems)


def test_the_dashboards_use_every_host_family_the_exporter_writes(written: Written) -> None:
    text = "\n".join(q.text for q in every_query())
    used = set(MEASUREMENT_RE.findall(text))
    for name in (
        "host_cpu_seconds_total",
        "host_load_average",
        "host_disk_usage_percent",
        "network_receive_bytes_total",
        "host_disk_written_bytes_total",
        "up",
    ):
        assert name in used and name in written.metrics


def test_a_renamed_metric_is_reported(written: Written) -> None:
    query = flux.gauge(DEFAULT_BUCKETS, ["host_memory_usage_percent"], flux.HOST_IS)
    renamed = query.replace("host_memory_usage_percent", "host_mem_usage_percent")
    assert check_names("q", query, written) == []
    assert check_names("q", renamed, written) == [
        "q: measurement host_mem_usage_percent is not written by the exporter or collector"
    ]


def test_a_gauge_read_through_a_counter_rollup_field_is_reported(written: Written) -> None:
    query = flux.gauge(DEFAULT_BUCKETS, ["host_memory_usage_percent"], flux.HOST_IS)
    wrong = query.replace('else "mean"', 'else "rate_mean"')
    assert any("rollup field rate_mean" in p for p in check_names("q", wrong, written))


def test_an_unknown_tag_or_event_field_is_reported(written: Written) -> None:
    query = flux.gauge(DEFAULT_BUCKETS, ["host_disk_usage_percent"], 'r.mount == "/"')
    assert check_names("q", query, written) == [
        "q: tag mount is not a label of ['host_disk_usage_percent']"
    ]
    events = 'from(bucket: "x")\n    |> filter(fn: (r) => r._measurement == "agent_logs")\n'
    variable = flux.tag_values(DEFAULT_BUCKETS, "container_info", "containr")
    assert check_names("v", variable, written) == [
        "v: tag containr is not a label of ['container_info']"
    ]
    assert check_names("e", events + '    |> filter(fn: (r) => r._field == "msg")\n', written) == [
        "e: field msg is not a field of agent_logs"
    ]
