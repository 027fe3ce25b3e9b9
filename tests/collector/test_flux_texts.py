"""Every Flux text the InfluxDB path ships or generates, checked by the official Flux
language service (npm @influxdata/flux-lsp-browser in Node; see tests/support/flux.py).

The service checks syntax and semantics (undefined identifiers, unknown packages and
arguments, type errors). What it cannot show is what the tasks compute on real data: no
InfluxDB 2 server can run here, so the rollup arithmetic is checked on the SQLite store and
the tasks' catch-up and late-data handling are checked by reading their text below.
"""

from __future__ import annotations

import pytest

from collector.storage.influx import flux
from collector.storage.influx.tasks import rollup_tasks
from fleetpulse.core.samples import is_counter
from fleetpulse.core.selector import parse_selector
from fleetpulse.core.storage import (
    AGENT_LOGS,
    AGGREGATES,
    ALERT_EVENTS,
    COUNTER_AGGREGATES,
    RangeQuery,
)
from tests.support.flux import check_flux, require_flux_checker

START, END = 1_764_237_600_000, 1_764_324_000_123
SELECTORS = [
    "up",
    'host_cpu_usage_percent{host="web 1"}',
    'host_disk_usage_percent{host="web-1", mountpoint!="/", device=~"sd.*|nvme/0", fstype!~"tmp\\"fs"}',
    'network_receive_bytes_total{interface=~"", host!="db-${x}"}',
    'container_restarts_total{container=~"web-.+", compose_project!~"test|dev"}',
    'container_cpu_usage_percent{compose_project="a\\\\b"}',
]


def assert_valid_flux(texts: dict[str, str]) -> None:
    """Fail with the service's messages for every text that has an error."""
    problems = {name: messages for name, messages in check_flux(texts).items() if messages}
    if problems:
        report = "\n".join(
            f"{name}: {message}\n{texts[name]}"
            for name, messages in problems.items()
            for message in messages
        )
        pytest.fail(f"invalid Flux:\n{report}", pytrace=False)


def generated_queries() -> dict[str, str]:
    texts = {}
    for i, text in enumerate(SELECTORS):
        selector = parse_selector(text)
        for tier in ("raw", "hourly", "daily"):
            for aggregate in AGGREGATES:
                if aggregate in COUNTER_AGGREGATES and not is_counter(selector.metric):
                    continue  # the adapter refuses these before building a query
                for step in (None, 300_000):
                    query = RangeQuery(selector, START, END, step, aggregate)
                    texts[f"range[{i}] {tier} {aggregate} step={step}"] = flux.range_query(
                        f"fleetpulse{'' if tier == 'raw' else '_1h'}", tier, query
                    )
        texts[f"latest[{i}]"] = flux.latest_query("fleetpulse", selector, START)
        for measurement in (ALERT_EVENTS, AGENT_LOGS):
            texts[f"events[{i}] {measurement}"] = flux.events_query(
                "fleetpulse_1d", measurement, START, END, selector, 100
            )
    texts["events without selector"] = flux.events_query(
        "fleetpulse", AGENT_LOGS, START, END, None, 5
    )
    texts["last seen raw"] = flux.last_seen_query("fleetpulse", 'web "1"', START)
    texts["last seen hourly"] = flux.last_seen_query("fleetpulse_1h", "web-1", START, field="max")
    return texts


def test_task_bodies_are_valid_flux() -> None:
    require_flux_checker()
    texts = {
        spec.name: spec.flux
        for bucket in ("fleetpulse", "metrics")
        for spec in rollup_tasks(bucket)
    }
    assert_valid_flux(texts)


def test_generated_queries_for_every_tier_aggregate_and_matcher_are_valid_flux() -> None:
    require_flux_checker()
    texts = generated_queries()
    assert len(texts) > 100
    assert_valid_flux(texts)


def test_invalid_flux_fails_with_the_parsers_message() -> None:
    require_flux_checker()
    broken = flux.latest_query("fleetpulse", parse_selector("up"), START).replace("last()", "last(")
    with pytest.raises(pytest.fail.Exception, match=r"latest: \d+:\d+: .*"):
        assert_valid_flux({"latest": broken})
    misspelt = rollup_tasks("fleetpulse")[0].flux.replace("initialZero", "initialZeros")
    with pytest.raises(pytest.fail.Exception, match="initialZeros"):
        assert_valid_flux({"hourly": misspelt})


def test_selectors_follow_prometheus_semantics_for_missing_labels() -> None:
    predicate = flux.selector_predicate(parse_selector('m{a="x", b!="y", c=~"z.*", d!~"w", e=""}'))
    assert 'r["a"] == "x"' in predicate and 'exists r["a"]' not in predicate
    assert '(not exists r["b"] or r["b"] != "y")' in predicate
    assert 'r["c"] =~ /^(?:z.*)$/' in predicate and 'exists r["c"]' not in predicate
    assert '(not exists r["d"] or r["d"] !~ /^(?:w)$/)' in predicate
    assert '(not exists r["e"] or r["e"] == "")' in predicate
    assert flux.flux_string('a"b\\c${d}') == '"a\\"b\\\\c\\${d}"'


def test_tasks_offset_for_late_data_and_catch_up_from_the_last_successful_run() -> None:
    hourly, daily = rollup_tasks("fleetpulse")
    assert "every: 1h, offset: 5m" in hourly.flux and "every: 1d, offset: 20m" in daily.flux
    for task in (hourly, daily):
        assert "tasks.lastSuccess(orTime: lookback)" in task.flux
        assert "start = if lastRun < lookback then lastRun else lookback" in task.flux
        assert (
            'timeSrc: "_start"' in task.flux
        )  # points keyed by window start: rewrites are idempotent
    assert (
        'to(bucket: "fleetpulse_1h")' in hourly.flux and 'from(bucket: "fleetpulse")' in hourly.flux
    )
    assert (
        'to(bucket: "fleetpulse_1d")' in daily.flux
        and 'from(bucket: "fleetpulse_1h")' in daily.flux
    )
    for field in ("mean", "min", "max", "count", "last", "rate_mean", "rate_max"):
        assert f'value: "{field}"' in hourly.flux or f'_field: "{field}"' in hourly.flux
        assert f'"{field}"' in daily.flux
    assert "nonNegative: true" in hourly.flux
    assert 'r._measurement != "alert_events"' in hourly.flux
