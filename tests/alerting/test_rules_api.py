"""GET /api/v1/rules: the rule set the engine published into a real SQLite store, with each
rule's pending and firing instances, as an API in another process reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from alerting.events import transition_event
from alerting.history import write_events
from alerting.published import rules_event
from alerting.rules import load_ruleset
from alerting.state import FIRING, INACTIVE, PENDING
from collector.storage.sqlite import SqliteStorage
from fleetpulse.core.defaults import BUILTIN_RULES
from fleetpulse.core.samples import make_labels
from fleetpulse.core.timeutil import now_ms
from tests.support.api import ServeApi

RULES = """\
groups:
  - name: host
    interval: 10s
    rules:
      - alert: CpuHigh
        metric: host_cpu_usage_percent
        window: 1m
        op: ">"
        threshold: cpu
        for: 2m
        notify: [ops]
      - alert: Down
        metric: up
        op: "=="
        threshold: 0
        severity: critical
"""


def rules_folder(tmp: Path, text: str) -> Path:
    """A rule file beside the built-in thresholds.yaml, whose keys the rules may name."""
    folder = tmp / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "thresholds.yaml").write_text((BUILTIN_RULES / "thresholds.yaml").read_text())
    (folder / "rules.yaml").write_text(text)
    return folder


async def get(url: str) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        doc: dict[str, Any] = await response.json()
        return doc


def cpu(host: str, severity: str) -> tuple[tuple[str, str], ...]:
    return make_labels({"host": host, "alertname": "CpuHigh", "severity": severity})


async def test_rules_are_the_published_set_with_their_pending_and_firing_instances(
    store: SqliteStorage, serve_api: ServeApi, tmp_path: Path
) -> None:
    base = await serve_api()
    assert await get(f"{base}/api/v1/rules") == {"loaded": None, "rules": []}
    ruleset = load_ruleset((rules_folder(tmp_path, RULES),), ("ops", "mail"))
    now = now_ms()
    await write_events(
        store,
        [
            rules_event(ruleset, ("mail",), now - 10_000),
            transition_event(cpu("a", "warning"), now - 3000, INACTIVE, PENDING, 75, 70, "s", None),
            transition_event(cpu("b", "critical"), now - 2000, PENDING, FIRING, 95, 85, "s", None),
            transition_event(cpu("c", "critical"), now - 1000, PENDING, FIRING, 95, 85, "s", None),
        ],
    )
    body = await get(f"{base}/api/v1/rules")
    assert body["loaded"].endswith("Z")
    by_name = {rule["alert"]: rule for rule in body["rules"]}
    assert list(by_name) == ["CpuHigh", "Down"]
    assert by_name["CpuHigh"] == {
        "alert": "CpuHigh",
        "group": "host",
        "metric": "host_cpu_usage_percent",
        "reduce": "last",
        "window": 60.0,
        "op": ">",
        "threshold": "cpu",
        "severities": ["warning", "critical"],
        "for": 120.0,
        "keep_firing_for": 0.0,
        "cooldown": 1800.0,
        "channels": ["ops"],
        "pending": 1,
        "firing": 2,
    }
    down = by_name["Down"]
    assert (down["threshold"], down["severities"], down["channels"]) == (0, ["critical"], ["mail"])
    assert (down["pending"], down["firing"]) == (0, 0)


async def test_the_latest_published_set_wins_and_stays_out_of_the_history(
    store: SqliteStorage, serve_api: ServeApi, tmp_path: Path
) -> None:
    base = await serve_api()
    ruleset = load_ruleset((rules_folder(tmp_path, RULES),), ("ops", "mail"))
    fewer_text = RULES.split("      - alert: Down")[0]
    fewer = load_ruleset((rules_folder(tmp_path, fewer_text),), ("ops", "mail"))
    now = now_ms()
    await write_events(store, [rules_event(ruleset, (), now - 5000), rules_event(fewer, (), now)])
    body = await get(f"{base}/api/v1/rules")
    assert [rule["alert"] for rule in body["rules"]] == ["CpuHigh"]
    assert (await get(f"{base}/api/v1/alerts/history?start=-1h"))["events"] == []


async def test_a_long_rule_list_is_split_into_fields_influxdb_accepts_and_read_whole(
    store: SqliteStorage, serve_api: ServeApi, tmp_path: Path
) -> None:
    base = await serve_api()
    many = "groups:\n  - name: many\n    rules:\n" + "".join(
        f"      - {{alert: Rule{n:03d}, metric: 'up{{host=\"host-{n:03d}\"}}', threshold: 1,"
        " op: '<', severity: critical}\n"
        for n in range(400)
    )
    ruleset = load_ruleset((rules_folder(tmp_path, many),))
    event = rules_event(ruleset, (), now_ms())
    assert len(event.fields) > 1
    assert all(len(str(value)) <= 60_000 for _, value in event.fields)
    await write_events(store, [event])
    body = await get(f"{base}/api/v1/rules")
    assert [rule["alert"] for rule in body["rules"]] == [f"Rule{n:03d}" for n in range(400)]
