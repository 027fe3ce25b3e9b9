"""The alert engine layers the store's threshold overrides over thresholds.yaml: read once
per cycle from the store, so an override (or its reset) written by another process counts
from the next cycle on, and a store that fails to answer keeps the last ones read."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from alerting.engine import AlertEngine
from alerting.settings import AlertingSettings
from alerting.state import FIRING
from collector.storage.sqlite import SqliteStorage
from fleetpulse.core.overrides import override_event
from fleetpulse.core.samples import Sample, label_value, make_labels
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import THRESHOLD_OVERRIDES, Event, StorageUnavailable
from fleetpulse.core.thresholds import Level
from fleetpulse.core.tiers import RetentionSettings
from fleetpulse.core.timeutil import now_ms
from tests.support.poll import eventually

RULE = """\
groups:
  - name: disk
    interval: 100ms
    rules:
      - alert: DiskOverThreshold
        metric: host_disk_usage_percent
        reduce: last
        window: 1m
        op: ">"
        threshold: disk
        for: 0s
"""
THRESHOLDS = "thresholds:\n  defaults:\n    disk: {warning: 70, critical: 85}\n"


class CountingStore(SqliteStorage):
    """Counts the override queries and can refuse them, as a store in an outage does."""

    override_reads = 0
    refuse = False

    async def query_events(
        self,
        measurement: str,
        start_ms: int,
        end_ms: int,
        selector: Selector | None = None,
        limit: int = 10_000,
    ) -> list[Event]:
        if measurement == THRESHOLD_OVERRIDES:
            self.override_reads += 1
            if self.refuse:
                raise StorageUnavailable("down for the test")
        return await super().query_events(measurement, start_ms, end_ms, selector, limit)


def firing_hosts(engine: AlertEngine) -> set[str]:
    return {label_value(i.labels, "host") for i in engine.instances.values() if i.state == FIRING}


async def write_usage(store: SqliteStorage, hosts: Sequence[str]) -> None:
    now = now_ms()
    await store.write(
        [
            Sample("host_disk_usage_percent", make_labels({"host": h, "mountpoint": "/"}), 40, now)
            for h in hosts
        ]
    )


async def test_overrides_from_the_store_count_from_the_next_cycle_once_read_per_cycle(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "disk.yaml").write_text(RULE)
    (rules / "thresholds.yaml").write_text(THRESHOLDS)
    store = await CountingStore.open(tmp_path / "metrics.db", RetentionSettings())
    assert isinstance(store, CountingStore)
    engine = AlertEngine(AlertingSettings(rules=(rules,)))
    engine.load()
    task = asyncio.create_task(engine.run(store, tmp_path / "data"))
    try:
        await write_usage(store, ["a", "b"])
        await eventually(lambda: engine.cycles >= 3, "three cycles")
        assert firing_hosts(engine) == set()
        assert store.override_reads <= engine.cycles

        override = override_event("a", (("disk", Level(30, 85)),), now_ms())
        await store.write_events(THRESHOLD_OVERRIDES, [override])
        await write_usage(store, ["a", "b"])
        await eventually(lambda: firing_hosts(engine) == {"a"}, "host a's disk alert")
        assert engine.thresholds.for_host("a")[0]["disk"] == Level(30, 85)

        # the store stops answering: the override read last stays in force
        store.refuse = True
        cycles = engine.cycles
        await eventually(lambda: engine.cycles >= cycles + 3, "three more cycles")
        assert engine.thresholds.for_host("a")[0]["disk"] == Level(30, 85)
        store.refuse = False

        await store.write_events(THRESHOLD_OVERRIDES, [override_event("a", (), now_ms())])
        await eventually(
            lambda: engine.thresholds.for_host("a")[0]["disk"] == Level(70, 85),
            "the reset in the engine",
        )
        assert store.override_reads <= engine.cycles
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
