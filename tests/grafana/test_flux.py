"""Every Flux text in the dashboards passes the official Flux language service, and the
generator's Flux helpers mean what the Python side means (globs, tiers)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetpulse.core.thresholds import load_thresholds
from grafana import flux
from grafana.contract import DEFAULT_THRESHOLDS_FILE
from tests.grafana.boards import DEFAULT_BUCKETS, dashboards, every_query
from tests.support.flux import check_flux, require_flux_checker, substitute_grafana_vars

# A value for every dashboard variable, as Grafana would substitute it.
VARIABLE_VALUES = {
    "host": "web-1",
    "container": "game-server",
    "severity": "critical",
    "level": "error",
    "search": 'disk "full"',
}


def _defined_variables() -> set[str]:
    return {v["name"] for board in dashboards().values() for v in board["templating"]["list"]}


@pytest.mark.flux
def test_every_dashboard_query_passes_the_flux_language_service() -> None:
    require_flux_checker()
    assert _defined_variables() <= set(VARIABLE_VALUES)
    queries = every_query()
    texts = {q.name: substitute_grafana_vars(q.text, VARIABLE_VALUES) for q in queries}
    assert len(texts) == len(queries), "two queries share a name"
    problems = {name: found for name, found in check_flux(texts).items() if found}
    assert not problems, "\n".join(
        f"{name}:\n  " + "\n  ".join(found) for name, found in problems.items()
    )


@pytest.mark.flux
def test_a_broken_dashboard_query_fails_with_the_services_message() -> None:
    require_flux_checker()
    query = flux.counter_rate(DEFAULT_BUCKETS, ["network_receive_bytes_total"], flux.HOST_IS)
    broken = query.replace("nonNegative: true", "nonNegative: true, unt: 1s")
    found = check_flux({"broken": substitute_grafana_vars(broken, VARIABLE_VALUES)})["broken"]
    assert any("unexpected argument unt" in message for message in found), found


@pytest.mark.flux
def test_a_misspelt_variable_in_a_query_is_reported() -> None:
    require_flux_checker()
    query = flux.gauge(DEFAULT_BUCKETS, ["host_cpu_usage_percent"], 'r.host == "${hots}"')
    found = check_flux({"q": substitute_grafana_vars(query, VARIABLE_VALUES)})["q"]
    assert any("undefined identifier hots" in message for message in found), found


@pytest.mark.flux
def test_threshold_functions_pass_the_service_for_layered_host_globs(tmp_path: Path) -> None:
    require_flux_checker()
    path = tmp_path / "thresholds.yaml"
    path.write_text(
        "thresholds:\n"
        "  defaults:\n"
        "    cpu: {warning: 70, critical: 85}\n"
        "    disk: {warning: 70, critical: 85}\n"
        "  hosts:\n"
        '    "db-*": {disk: {warning: 60}}\n'
        '    "db-[0-9]?/x.y": {disk: {critical: 99.5}, cpu: {warning: 50, critical: 60}}\n'
    )
    text = flux.threshold_lines(load_thresholds(path), "disk")
    assert "if host =~ /^db-[0-9].\\/x\\.y$/ then 99.5 else if host =~ /^db-.*$/ then 85.0" in text
    assert check_flux({"t": substitute_grafana_vars(text, VARIABLE_VALUES)}) == {"t": []}


# "-" only outside brackets: fnmatch's handling of several ranges in one class is its own.
GLOB_CHARS = st.sampled_from(list("ab_.*?/[]!0+^\\"))
HOST_CHARS = st.sampled_from(list("ab-_.0/+!^[]\\"))


def _matches(pattern: str, host: str) -> bool:
    literal = flux.glob_regex(pattern)
    assert literal.startswith("/") and literal.endswith("/")
    body = literal[1:-1].replace("\\/", "/")
    try:
        regex = re.compile(body)
    except re.error:
        pytest.fail(f"glob {pattern!r} gave an invalid regex {literal}")
    return bool(regex.fullmatch(host))


@given(pattern=st.text(GLOB_CHARS, max_size=8), host=st.text(HOST_CHARS, max_size=8))
def test_glob_regex_matches_what_fnmatch_matches(pattern: str, host: str) -> None:
    assert _matches(pattern, host) == fnmatch.fnmatchcase(host, pattern), pattern


@pytest.mark.parametrize(
    ("pattern", "host"),
    [
        ("db-*", "db-1"),
        ("db-*", "web-1"),
        ("web-[0-9]", "web-7"),
        ("web-[!0-9]", "web-7"),
        ("web-[!0-9]", "web-x"),
        ("game-??.eu", "game-01.eu"),
        ("game-??.eu", "game-01xeu"),
        ("[z-a]x", "ax"),
    ],
)
def test_glob_regex_agrees_with_fnmatch_on_host_names(pattern: str, host: str) -> None:
    assert _matches(pattern, host) == fnmatch.fnmatchcase(host, pattern)


def test_shipped_thresholds_yaml_has_a_customised_host_glob_in_the_dashboards() -> None:
    thresholds = load_thresholds(DEFAULT_THRESHOLDS_FILE)
    text = flux.threshold_functions(thresholds)
    for pattern, _ in thresholds.hosts:
        assert f"host =~ {flux.glob_regex(pattern)}" in text
