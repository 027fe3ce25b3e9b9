"""Alert engine benchmark on the embedded SQLite store. Prints one table:

- one evaluation cycle of 1,000 rules over 100 hosts: rules spread over 10 metrics (with
  differing matchers, or the same selector; 5 minutes of 15 s points per series), and the
  worst case of 1,000 metrics with one rule each; best and median of a few cycles and the
  number of range queries a cycle sends; the worst case once more as the service runs it,
  with the state file of its ~25,000 pending instances written each cycle;
- the latency from the moment a rule's `for` is satisfied to the arrival of its notification
  at a local json:// webhook, over several alerts, with a 1 s evaluation interval.

Usage: .venv/bin/python bench/alerting.py [--rules 1000] [--hosts 100] [--cycles 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerting.engine import AlertEngine  # noqa: E402
from alerting.query import plan_queries  # noqa: E402
from alerting.settings import AlertingSettings, ChannelSettings  # noqa: E402
from collector.storage.sqlite import SqliteStorage  # noqa: E402
from fleetpulse.core.samples import Sample, make_labels  # noqa: E402
from fleetpulse.core.tiers import RetentionSettings  # noqa: E402
from fleetpulse.core.timeutil import now_ms  # noqa: E402
from tests.alerting.recorders import http_recorder  # noqa: E402

METRICS = 10


def rules_yaml(count: int, metrics: int, distinct: bool) -> str:
    """`count` rules over `metrics` metrics; `distinct` gives every rule its own selector (a
    matcher on an absent label, so each still matches every host)."""
    lines = ["groups:", "  - name: bench", "    interval: 15s", "    rules:"]
    for i in range(count):
        selector = f"bench_metric_{i % metrics}"
        if distinct:
            selector += f'{{job="bench", rule!="r{i}"}}'
        lines += [
            f"      - alert: Rule{i}",
            f"        metric: '{selector}'",
            f"        reduce: {('avg', 'max', 'last', 'min')[i % 4]}",
            "        window: 5m",
            '        op: ">"',
            f"        threshold: {50 + i % 50}",
            "        for: 5m",
            "        cooldown: 1h",
            "        annotations:",
            '          summary: "{{ labels.host }} at {{ value }}"',
        ]
    return "\n".join(lines) + "\n"


async def fill(store: SqliteStorage, hosts: int, metrics: int, points: int) -> int:
    now = now_ms()
    samples = [
        Sample(
            f"bench_metric_{m}",
            make_labels({"host": f"host-{h:03d}", "job": "bench"}),
            float((h * 7 + m * 13 + p) % 100),
            now - p * 15_000,
        )
        for h in range(hosts)
        for m in range(metrics)
        for p in range(points)
    ]
    for start in range(0, len(samples), 50_000):
        await store.write(samples[start : start + 50_000])
    return len(samples)


@dataclass(frozen=True)
class Scenario:
    name: str
    metrics: int
    points: int
    distinct: bool


async def cycle_time(
    rules: int, hosts: int, cycles: int, tmp: Path, scenario: Scenario, *, save: bool = False
) -> tuple[list[float], int]:
    """Seconds per evaluation of the group; with `save`, per service cycle: the evaluation,
    then the state file of every instance (pending ones included) written to disk."""
    folder = tmp / f"rules-{scenario.name}"
    folder.mkdir()
    (folder / "bench.yaml").write_text(rules_yaml(rules, scenario.metrics, scenario.distinct))
    store = await SqliteStorage.open(tmp / f"{scenario.name}.db", RetentionSettings())
    try:
        await fill(store, hosts, scenario.metrics, scenario.points)
        engine = AlertEngine(AlertingSettings(rules=(folder,)))
        engine.load()
        group = engine.ruleset.groups[0]
        times = []
        for _ in range(cycles):
            started = time.perf_counter()
            if save:
                await engine._run_cycle(store, tmp / f"data-{scenario.name}", [group])
            else:
                await engine.evaluate_group(store, group, now_ms())
            times.append(time.perf_counter() - started)
        return times, len(plan_queries(group.rules))
    finally:
        await store.close()


async def delivery_latency(alerts: int, tmp: Path) -> list[float]:
    """Seconds from `for` satisfied (pending_since + for) to arrival at the webhook."""
    rules = tmp / "latency"
    rules.mkdir()
    (rules / "latency.yaml").write_text(
        "groups:\n  - name: latency\n    interval: 1s\n    rules:\n"
        "      - alert: Hot\n        metric: temperature\n        reduce: last\n"
        "        window: 5s\n        op: '>'\n        threshold: 50\n        severity: critical\n"
        "        for: 2s\n        cooldown: 1h\n"
    )
    store = await SqliteStorage.open(tmp / "latency.db", RetentionSettings())
    out = []
    async with http_recorder() as recorder:
        port = recorder.base.rsplit(":", 1)[1]
        settings = AlertingSettings(
            rules=(rules,),
            interval=1.0,
            channels=(ChannelSettings("hook", (f"json://127.0.0.1:{port}/hook",)),),
            default_channels=("hook",),
        )
        engine = AlertEngine(settings)
        engine.load()
        task = asyncio.create_task(engine.run(store, tmp / "latency-data"))
        try:
            for n in range(alerts):
                host = f"oven-{n}"
                labels = make_labels({"host": host, "job": "bench"})
                seen = len(recorder.received)
                deadline = time.monotonic() + 30
                while len(recorder.received) == seen and time.monotonic() < deadline:
                    await store.write([Sample("temperature", labels, 80.0, now_ms())])
                    await asyncio.sleep(0.1)
                arrived_ms = (
                    time.time() * 1000 - (time.monotonic() - recorder.received[-1].at) * 1000
                )
                inst = next(i for i in engine.instances.values() if dict(i.labels)["host"] == host)
                assert inst.pending_since is not None
                out.append((arrived_ms - (inst.pending_since + 2000)) / 1000)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--alerts", type=int, default=5)
    args = parser.parse_args()
    worst = Scenario("1 metric per rule (worst case)", args.rules, 3, False)
    scenarios = (
        Scenario("10 metrics, matchers differ per rule", METRICS, 20, True),
        Scenario("10 metrics, one selector each", METRICS, 20, False),
        worst,
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for scenario in scenarios:
            times, queries = await cycle_time(args.rules, args.hosts, args.cycles, tmp, scenario)
            rows.append((scenario.name, times, queries))
        saved = Scenario("worst-saved", args.rules, 3, False)
        times, queries = await cycle_time(
            args.rules, args.hosts, args.cycles, tmp, saved, save=True
        )
        rows.append(("worst case + state save", times, queries))
        latencies = await delivery_latency(args.alerts, tmp)
    print(f"{'measure':<68} {'queries':>7} {'best':>8} {'median':>8}")
    print(f"{'-' * 68} {'-' * 7} {'-' * 8} {'-' * 8}")
    for name, times, queries in rows:
        label = f"cycle {args.rules} rules x {args.hosts} hosts, {name}"
        print(f"{label:<68} {queries:>7} {min(times):>7.3f}s {statistics.median(times):>7.3f}s")
    label = f"for satisfied -> webhook, 1s interval, {args.alerts} alerts"
    print(
        f"{label:<68} {'':>7} {min(latencies):>7.3f}s {statistics.median(latencies):>7.3f}s"
        f"  (max {max(latencies):.3f}s)"
    )
    print("targets: a cycle within 1s; delivery within one interval + 1s (here 2s)")


if __name__ == "__main__":
    asyncio.run(main())
