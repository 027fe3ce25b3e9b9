"""Every Flux text in the dashboards passes the official Flux language service, and the
generator's Flux helpers mean what the Python side means (tiers)."""

from __future__ import annotations

import pytest

from grafana import flux
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
