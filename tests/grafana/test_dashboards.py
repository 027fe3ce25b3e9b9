"""The committed dashboards: valid JSON, sound layout, provisioned datasource, resolvable
variables, thresholds equal to rules/thresholds.yaml, and the tier rule of the API."""

from __future__ import annotations

import json
import re

import pytest

from fleetpulse.core.thresholds import CUSTOMIZED_SERIES, THRESHOLD_SERIES, load_thresholds
from fleetpulse.core.tiers import TIERS, RetentionSettings, retention_ms
from grafana.contract import DASHBOARD_UIDS, DATASOURCE_UID, DEFAULT_THRESHOLDS_FILE
from tests.grafana.boards import (
    BUILTIN_PREFIX,
    JSON,
    all_panels,
    dashboard_files,
    dashboards,
    datasources_in,
    every_query,
    load,
    strings_in,
    variables_used,
)

BOARDS = dashboards()


def test_every_dashboard_named_in_the_contract_is_committed_as_valid_json() -> None:
    files = dashboard_files()
    assert {path.stem for path in files} == set(DASHBOARD_UIDS)
    for path in files:
        board = json.loads(path.read_text(encoding="utf-8"))
        assert board["uid"] == DASHBOARD_UIDS[path.stem]
        assert board["panels"], path


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panel_ids_are_unique(name: str) -> None:
    ids = [panel["id"] for panel in all_panels(BOARDS[name])]
    assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_fit_the_grid_and_never_overlap(name: str) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in BOARDS[name]["panels"]:
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0, panel["title"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                other = cells.setdefault((x, y), panel["title"])
                assert other == panel["title"], f"{name}: {panel['title']!r} overlaps {other!r}"


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_datasource_is_the_provisioned_influxdb(name: str) -> None:
    refs = list(datasources_in(BOARDS[name]))
    assert refs
    for ref in refs:
        assert ref == {"type": "influxdb", "uid": DATASOURCE_UID}


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_variable_used_is_defined(name: str) -> None:
    board = BOARDS[name]
    defined = {variable["name"] for variable in board["templating"]["list"]}
    used = set()
    for text in strings_in({k: v for k, v in board.items() if k != "templating"}):
        used |= variables_used(text)
    for variable in board["templating"]["list"]:
        used |= variables_used(variable.get("query", ""))
    undefined = {u for u in used if not u.startswith(BUILTIN_PREFIX)} - defined
    assert not undefined, f"{name}: undefined variables {sorted(undefined)}"


def test_variable_check_catches_a_misspelt_variable() -> None:
    assert variables_used('r.host == "${hots}" and $container') == {"hots", "container"}
    assert variables_used("${__field.labels.mountpoint} [[host]]") == {"__field", "host"}


def test_links_point_at_dashboards_that_exist() -> None:
    for name, board in BOARDS.items():
        for text in strings_in(board):
            for uid in re.findall(r"/d/([\w-]+)", text):
                assert uid in DASHBOARD_UIDS.values(), f"{name}: link to unknown dashboard {uid}"


def test_presets_and_shared_tooltips() -> None:
    for name, board in BOARDS.items():
        assert board["graphTooltip"] == 2, name  # shared tooltip
        assert board["time"]["to"] == "now", name
        assert board["editable"] is False, name
    # Grafana's default quick ranges hold 24h, 7d and 30d; nothing hides them.
    for board in BOARDS.values():
        assert "hidden" not in board["timepicker"]
        assert "time_options" not in board["timepicker"]


def _threshold_values(panel: JSON) -> list[float]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [step["value"] for step in steps if step["value"] is not None]


def test_usage_panels_carry_the_default_levels_of_thresholds_yaml() -> None:
    levels = dict(load_thresholds(DEFAULT_THRESHOLDS_FILE).defaults)
    metric_key = {
        "host_cpu_usage_percent": "cpu",
        "host_memory_usage_percent": "memory",
        "host_disk_usage_percent": "disk",
    }
    checked = 0
    for name, board in BOARDS.items():
        for panel in all_panels(board):
            queries = [t["query"] for t in panel.get("targets", [])]
            if panel["type"] not in ("timeseries", "stat") or not queries:
                continue
            keys = {key for metric, key in metric_key.items() if f'"{metric}"' in queries[0]}
            if len(keys) != 1:
                continue
            level = levels[keys.pop()]
            if panel["title"] == "Status":
                continue  # a state, not a percentage
            assert _threshold_values(panel) == [level.warning, level.critical], (
                f"{name}: {panel['title']}"
            )
            checked += 1
    assert checked >= 10


def test_threshold_lines_read_the_levels_the_collector_publishes() -> None:
    """No level is frozen into the lines: they are the `fleetpulse_threshold` series of the
    host and key, so an override set in the console shows from the next scrape on."""
    host = BOARDS["host"]
    lines = [
        t["query"]
        for p in all_panels(host)
        for t in p.get("targets", [])
        if THRESHOLD_SERIES in t["query"]
    ]
    assert len(lines) == 3  # the CPU, memory and disk usage panels
    for key, query in zip(("cpu", "memory", "disk"), lines, strict=True):
        assert f'r.host == "${{host}}" and r.key == "{key}"' in query, query
        assert '"level"' in query, query
    for query in every_query():
        assert "array.from" not in query.text, query.name


def test_the_overview_rates_hosts_by_the_published_levels() -> None:
    statuses = [q for q in every_query() if "worst_level" in q.text]
    assert statuses
    for query in statuses:
        assert f'r._measurement == "{THRESHOLD_SERIES}"' in query.text, query.name
        assert f'r._measurement == "{CUSTOMIZED_SERIES}"' in query.text, query.name
        assert "=~ /^db-" not in query.text, query.name  # no glob of the file frozen in


def test_every_bucket_query_picks_its_tier_like_the_api() -> None:
    retention = RetentionSettings()
    raw_ns = retention_ms(retention, "raw") * 1_000_000
    hourly_ns = retention_ms(retention, "hourly") * 1_000_000
    expected = (
        f'bucket = if tier_start >= tier_now - {raw_ns} then "fleetpulse{TIERS[0].bucket_suffix}" '
        f'else if tier_start >= tier_now - {hourly_ns} then "fleetpulse{TIERS[1].bucket_suffix}" '
        f'else "fleetpulse{TIERS[2].bucket_suffix}"'
    )
    metric_queries = [q for q in every_query() if "from(bucket: bucket)" in q.text]
    assert len(metric_queries) > 40
    for query in every_query():
        if "from(bucket:" not in query.text and "schema.tagValues" not in query.text:
            continue
        if "from(bucket: bucket)" in query.text or "schema.tagValues(bucket: bucket" in query.text:
            assert "tier_start = int(v: v.timeRangeStart)" in query.text, query.name
            assert expected in query.text, query.name
        else:  # events are not rolled up: they live in one bucket
            assert '"alert_events"' in query.text or '"agent_logs"' in query.text, query.name


def test_counter_rates_use_derivative_on_raw_and_rate_fields_on_rollups() -> None:
    rates = [q for q in every_query() if "per_second()" in q.text]
    assert len(rates) >= 8
    for query in rates:
        assert "derivative(unit: 1s, nonNegative: true)" in query.text, query.name
        assert re.search(r'rate_field = if raw then "value" else "rate_(mean|max)"', query.text)
    assert not [q for q in every_query() if "derivative" in q.text and q not in rates]


def test_generated_files_load_with_the_stdlib_json_parser() -> None:
    for path in dashboard_files():
        assert load(path)["schemaVersion"] >= 39
