"""Benchmark collector.parse against prometheus_client's text parser; prints one table.

Run: `.venv/bin/python bench/parse.py [--repeat 5] [--samples 100000]`. Each figure is the best of
`--repeat` runs (the least disturbed by other load). Our parser gets bytes, as the scrape loop
does, so its figures include the UTF-8 decode; prometheus_client gets the decoded text.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from collector.parse import parse_exposition

NODE_EXPORTER_FILE = (
    Path(__file__).resolve().parent.parent / "tests" / "data" / "node_exporter.prom"
)

# (metric, help, extra labels): ten container-style families, as the exporter serves them.
SYNTHETIC_FAMILIES = [
    ("container_cpu_seconds_total", "CPU time", ""),
    ("container_cpu_usage_percent", "CPU usage, 100 = one core", ""),
    ("container_memory_usage_bytes", "Memory in use", ""),
    ("container_memory_limit_bytes", "Memory limit", ""),
    ("container_memory_usage_percent", "Memory usage", ""),
    ("container_network_receive_bytes_total", "Bytes received", ',interface="eth0"'),
    ("container_network_transmit_bytes_total", "Bytes sent", ',interface="eth0"'),
    ("container_block_read_bytes_total", "Bytes read", ""),
    ("container_block_written_bytes_total", "Bytes written", ""),
    ("container_pids", "Processes", ""),
]
SYNTHETIC_CONTAINERS = 50  # x 10 families = 500 series


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    bodies: Sequence[bytes]  # one body per run; several only when each run needs fresh ones
    samples: int  # per body


def synthetic_body(generation: int | None = None) -> bytes:
    """500 labelled series; with a generation, every label set is one never parsed before."""
    lines = []
    for family, (metric, help_text, extra) in enumerate(SYNTHETIC_FAMILIES):
        lines.append(f"# HELP {metric} {help_text}.")
        lines.append(f"# TYPE {metric} {'counter' if metric.endswith('_total') else 'gauge'}")
        for index in range(SYNTHETIC_CONTAINERS):
            container = f"shop-web-{index}" if generation is None else f"g{generation}-{index}"
            labels = (
                f'container="{container}",compose_project="shop",'
                f'compose_service="web{index % 7}"{extra}'
            )
            value = index * 1234.5678 + family
            lines.append(f"{metric}{{{labels}}} {value!r}")
    return ("\n".join(lines) + "\n").encode()


def workloads(target_samples: int, repeat: int) -> list[Workload]:
    node = NODE_EXPORTER_FILE.read_bytes()
    per_copy = len(parse_exposition(node))
    copies = max(1, round(target_samples / per_copy))
    synthetic = synthetic_body()
    return [
        Workload(f"node_exporter output x{copies}", [node * copies], per_copy * copies),
        Workload("synthetic, 500 labelled series", [synthetic], len(parse_exposition(synthetic))),
        Workload(
            "synthetic, 500 never-seen label sets",
            [synthetic_body(generation) for generation in range(repeat)],
            len(parse_exposition(synthetic)),
        ),
    ]


def ours(body: bytes) -> int:
    return len(parse_exposition(body))


def prometheus_client(body: bytes) -> int:
    text = body.decode()
    return sum(len(family.samples) for family in text_string_to_metric_families(text))


def best_rate(parse: Callable[[bytes], int], workload: Workload, repeat: int) -> float:
    """Samples per second of the fastest run; small bodies are parsed in batches of ~0.2 s."""
    batch = max(1, 100_000 // workload.samples) if len(workload.bodies) == 1 else 1
    best = float("inf")
    for run in range(repeat):
        body = workload.bodies[run % len(workload.bodies)]
        started = time.perf_counter()
        for _ in range(batch):
            count = parse(body)
        elapsed = (time.perf_counter() - started) / batch
        if count != workload.samples:
            raise SystemExit(
                f"{workload.name}: parsed {count} samples, expected {workload.samples}"
            )
        best = min(best, elapsed)
    return workload.samples / best


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (best is kept)")
    parser.add_argument("--samples", type=int, default=100_000, help="node_exporter body size")
    args = parser.parse_args(argv)

    print(f"Python {platform.python_version()} on {platform.machine()}, best of {args.repeat}")
    header = ("workload", "samples", "ours (samples/s)", "prometheus_client (samples/s)", "ratio")
    rows = []
    # Warm both parsers (imports, regex compilation) and, for ours, the label-set cache, as a
    # collector in steady state has it; the never-seen workload shows the cold-cache cost.
    for workload in workloads(args.samples, args.repeat):
        if len(workload.bodies) == 1:
            ours(workload.bodies[0])
        ours_rate = best_rate(ours, workload, args.repeat)
        reference_rate = best_rate(prometheus_client, workload, args.repeat)
        rows.append(
            (
                workload.name,
                f"{workload.samples:,}",
                f"{ours_rate:,.0f}",
                f"{reference_rate:,.0f}",
                f"{ours_rate / reference_rate:.1f}x",
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * width for width in widths), *rows]:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))


if __name__ == "__main__":
    main()
