"""Reduce functions and operators, observations, and one query per rule through the real
SQLite store."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from alerting.observe import observe
from alerting.query import RuleQueries, plan_queries, query_key
from alerting.reduce import OPS, REDUCERS
from alerting.rules import Rule
from alerting.severity import Severity
from collector.storage.sqlite import SqliteStorage
from fleetpulse.core.samples import Sample, Series, make_labels
from fleetpulse.core.selector import parse_selector
from fleetpulse.core.thresholds import Level, Thresholds
from fleetpulse.core.timeutil import now_ms


def points(*values: float, step_ms: int = 1000) -> list[tuple[int, float]]:
    return [(i * step_ms, v) for i, v in enumerate(values)]


def test_plain_reducers_summarise_the_window() -> None:
    p = points(1, 5, 3)
    assert [REDUCERS[n](p) for n in ("avg", "min", "max", "last", "sum", "count")] == [
        3.0,
        1,
        5,
        3,
        9,
        3.0,
    ]
    assert all(REDUCERS[n]([]) is None for n in REDUCERS)


def test_increase_and_rate_count_a_counter_reset_as_a_restart_not_a_drop() -> None:
    p = points(100, 110, 120, 5, 15)  # reset between 120 and 5
    assert REDUCERS["increase"](p) == 10 + 10 + 5 + 10
    assert REDUCERS["rate"](p) == 35 / 4


def test_rate_needs_two_points() -> None:
    assert REDUCERS["rate"](points(5)) is None
    assert REDUCERS["increase"](points(5)) is None


def test_gauge_trend_reducers_follow_a_straight_line() -> None:
    p = points(10, 12, 14, 16, step_ms=20 * 60_000)  # +2 per 20 minutes, over an hour
    assert REDUCERS["delta"](p) == 6
    assert abs((REDUCERS["deriv"](p) or 0) - 2 / 1200) < 1e-9
    assert abs((REDUCERS["predict_24h"](p) or 0) - (16 + 2 * 3 * 24)) < 1e-6


def test_a_day_ahead_forecast_needs_an_hour_of_samples() -> None:
    """Two samples 15 s apart on a busy disk must not predict it full tomorrow."""
    assert REDUCERS["predict_24h"](points(21.4, 21.5, step_ms=15_000)) is None
    assert REDUCERS["predict_24h"](points(10, 12, 14, 16, step_ms=60_000)) is None


@given(st.lists(st.floats(min_value=0, max_value=1e12), min_size=2, max_size=50))
def test_increase_and_rate_are_never_negative(values: list[float]) -> None:
    p = points(*values)
    assert (REDUCERS["increase"](p) or 0) >= 0
    assert (REDUCERS["rate"](p) or 0) >= 0


def test_operators_compare_value_to_threshold() -> None:
    assert [OPS[o](2, 1) for o in (">", ">=", "<", "<=", "==", "!=")] == [
        True,
        True,
        False,
        False,
        False,
        True,
    ]


def rule(**overrides: Any) -> Rule:
    fields: dict[str, Any] = {
        "alert": "CpuHigh",
        "selector": parse_selector("host_cpu_usage_percent"),
        "threshold": "cpu",
    }
    fields.update(overrides)
    return Rule(**fields)


def test_a_thresholds_key_gives_warning_and_critical_per_series_with_host_overrides() -> None:
    thresholds = Thresholds((("cpu", Level(70, 85)),), (("db-*", (("cpu", Level(50, 60)),)),))
    series = [
        Series("host_cpu_usage_percent", make_labels({"host": "web-1"}), points(75)),
        Series("host_cpu_usage_percent", make_labels({"host": "db-1"}), points(65)),
    ]
    got = {
        (dict(o.series_labels)["host"], o.severity): (o.threshold, o.active)
        for o in observe(rule(), series, thresholds)
    }
    assert got == {
        ("web-1", "warning"): (70, True),
        ("web-1", "critical"): (85, False),
        ("db-1", "warning"): (50, True),
        ("db-1", "critical"): (60, True),
    }


async def test_one_range_query_serves_every_series_of_a_rule(store: SqliteStorage) -> None:
    now = now_ms()
    await store.write(
        [
            Sample("host_cpu_usage_percent", make_labels({"host": h, "job": "j"}), v, now - 500)
            for h, v in (("a", 10.0), ("b", 99.0), ("c", 50.0))
        ]
    )
    cpu = rule(threshold=80.0, severity=Severity.CRITICAL, reduce="last")
    (series,) = await RuleQueries().series(store, [cpu], now)
    assert isinstance(series, list)
    found = observe(cpu, series, Thresholds())
    assert sorted((dict(o.series_labels)["host"], o.active) for o in found) == [
        ("a", False),
        ("b", True),
        ("c", False),
    ]
    assert all(o.alert == "CpuHigh" for o in found)


def test_rules_over_one_metric_share_a_query_on_their_common_matchers() -> None:
    rules = [
        rule(alert="A", selector=parse_selector('m{job="x", role="game"}')),
        rule(alert="B", selector=parse_selector('m{job="x", role="build"}')),
        rule(alert="C", selector=parse_selector('m{host="db-1"}')),
        rule(alert="D", selector=parse_selector("m"), window=300.0),
        rule(alert="E", selector=parse_selector("other")),
    ]
    plan = plan_queries(rules)
    assert {key: str(selector) for key, selector in plan.items()} == {
        ("m", None, 60.0): 'm{job="x"}',
        ("m", "db-1", 60.0): 'm{host="db-1"}',
        ("m", None, 300.0): "m",
        ("other", None, 60.0): "other",
    }
    assert query_key(rules[1]) == ("m", None, 60.0)
