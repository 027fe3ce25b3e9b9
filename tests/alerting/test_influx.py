"""The engine unchanged on InfluxDB: the real influxdb-client against the recording InfluxDB
API (no InfluxDB server can run here). One Flux query per rule, never one per series."""

from __future__ import annotations

import re
from pathlib import Path

from alerting.engine import AlertEngine
from alerting.settings import AlertingSettings
from collector.storage.influxdb import InfluxStorage
from collector.storage.settings import InfluxSettings
from fleetpulse.core.tiers import RetentionSettings
from fleetpulse.core.timeutil import now_ms
from tests.support.influx_recorder import TOKEN, CsvTable, InfluxRecorder, series_table

RULES = """
groups:
  - name: fleet
    interval: 15s
    rules:
      - alert: CpuHigh
        metric: host_cpu_usage_percent
        reduce: avg
        window: 1m
        op: ">"
        threshold: 80
        severity: critical
      - alert: MemoryHigh
        metric: host_memory_usage_percent
        reduce: max
        window: 1m
        op: ">"
        threshold: 80
      - alert: Down
        metric: up
        reduce: last
        window: 1m
        op: "=="
        threshold: 0
        severity: critical
"""
HOSTS = 50


async def test_one_flux_query_per_rule_covers_every_host(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    now = now_ms()

    def answer(text: str) -> list[CsvTable]:
        metric = re.search(r'r\._measurement == "([^"]+)"', text)
        name = metric.group(1) if metric else "unknown"
        value = 95.0 if name == "host_cpu_usage_percent" else 1.0
        return [
            series_table(
                name,
                {"host": f"web-{h}", "job": "fleetpulse"},
                [(now - 30_000, value), (now - 15_000, value if h == 7 else 10.0)],
            )
            for h in range(HOSTS)
        ]

    recorder.answer_queries(answer)
    settings = InfluxSettings(
        url=recorder.url, token=TOKEN, org="fleetpulse", bucket="fleetpulse", timeout=5.0
    )
    store = await InfluxStorage.open(settings, RetentionSettings(), tmp_path / "spool")
    try:
        (tmp_path / "rules.yaml").write_text(RULES)
        engine = AlertEngine(AlertingSettings(rules=(tmp_path / "rules.yaml",)))
        engine.load()
        result = await engine.evaluate_group(store, engine.ruleset.groups[0], now)
    finally:
        await store.close()
    assert len(recorder.queries) == 3
    firing = sorted(
        (inst.alert, dict(inst.labels)["host"], inst.state) for inst in engine.instances.values()
    )
    assert firing == [("CpuHigh", "web-7", "firing")]
    assert [dict(e.labels)["host"] for e in result.events] == ["web-7"]
