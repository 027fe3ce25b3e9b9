"""Benchmark the collector end to end and against Debian's `prometheus`; prints one table.

Run: `.venv/bin/python -m bench.collector [--seconds 15]`. Figures:

- parse throughput of collector.parse against prometheus_client (bench/parse.py's workloads);
- end to end: synthetic targets (500 series each, served by a separate process on loopback)
  scraped, parsed and written to SQLite by the collector in this process, for 100 targets
  every 1 s and 1,000 targets every 5 s; samples/s per CPU-second of this process (all its
  threads), and its resident memory after the warm-up and at the end (flat = no growth).
  The warm-up lasts two intervals and until the backlog of the first rounds (when every series
  is new) is written; its length and the peak memory are in the table;
- the same targets scraped by Debian's `prometheus` (apt-get install prometheus), its CPU
  time read from /proc/<pid>/stat and its samples from its own
  `prometheus_tsdb_head_samples_appended_total`; CPU-seconds per million samples for both and
  the ratio. Missing `prometheus` is reported in the table, not an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

# bench/ holds scripts named like our packages (this file is collector.py): put the repository,
# not this folder, first on the path
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import psutil  # noqa: E402
from aiohttp import web  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from bench.parse import best_rate, ours, prometheus_client, synthetic_body, workloads  # noqa: E402
from collector.scrapers import Scrapers  # noqa: E402
from collector.settings import ScrapeSettings, TargetSettings  # noqa: E402
from collector.storage.settings import SqliteSettings  # noqa: E402
from collector.storage.sqlite import SqliteStorage  # noqa: E402
from collector.targets import resolve_target  # noqa: E402
from fleetpulse.app.collector_main import tune_gc  # noqa: E402
from fleetpulse.core.tiers import RetentionSettings  # noqa: E402

WARM_PENDING = 50_000  # queued samples below which the first rounds' backlog counts as written
PORTS = 20  # the target server listens on several ports, as a fleet has many hosts
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# -- the synthetic target server (a separate process, so its CPU is not counted) ----------


async def serve_targets(ports: int) -> None:
    body = synthetic_body()

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/t/{n}", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    bound = []
    for _ in range(ports):
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        bound.append(server.sockets[0].getsockname()[1])
    print(json.dumps(bound), flush=True)
    await asyncio.Event().wait()


def start_target_server() -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-targets", str(PORTS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def target_urls(ports: list[int], count: int) -> list[tuple[str, str]]:
    return [(f"127.0.0.1:{ports[i % len(ports)]}", f"/t/{i}") for i in range(count)]


# -- our collector ------------------------------------------------------------------------


async def run_ours(
    targets: list[tuple[str, str]],
    interval: float,
    seconds: float,
    linger: float = SqliteSettings().flush_interval,
) -> dict[str, float]:
    scrape = ScrapeSettings(interval=interval, timeout=interval)
    resolved = [
        resolve_target(TargetSettings(url=f"http://{addr}{path}", host=f"t{i}"), scrape)
        for i, (addr, path) in enumerate(targets)
    ]
    me = psutil.Process()
    tune_gc()  # as `fleetpulse collector` does
    with tempfile.TemporaryDirectory() as tmp:
        # as `fleetpulse collector` on SQLite: samples wait storage.sqlite.flush_interval
        store = await SqliteStorage.open(
            Path(tmp) / "metrics.db", RetentionSettings(), flush_interval=linger
        )
        registry = CollectorRegistry()
        collector = Scrapers(store, registry)
        await collector.start(resolved)

        def written() -> float:
            return registry.get_sample_value("fleetpulse_samples_written_total") or 0.0

        # warm-up: every target scraped, its series registered and the backlog of the first
        # rounds written (measured, so a slow start shows), then the steady state is measured
        started = time.monotonic()
        await asyncio.sleep(2 * interval)
        for _ in range(1500):  # polls a figure nothing signals; at most 5 minutes
            if store.stats().pending_samples <= WARM_PENDING:
                break
            await asyncio.sleep(0.2)
        warm_up = time.monotonic() - started
        rss_start = me.memory_info().rss
        cpu0, samples0, wall0 = time.process_time(), written(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, samples1, wall1 = time.process_time(), written(), time.monotonic()
        rss_end = me.memory_info().rss
        rss_peak = peak_rss()
        down = registry.get_sample_value("fleetpulse_scrapes_total", {"result": "down"}) or 0
        await collector.stop()
        await store.close()
    samples = samples1 - samples0
    return {
        "samples": samples,
        "cpu": cpu1 - cpu0,
        "wall": wall1 - wall0,
        "rss_start": rss_start,
        "rss_end": rss_end,
        "rss_peak": rss_peak,
        "warm_up": warm_up,
        "down": down,
    }


def peak_rss() -> float:
    """This process's peak resident memory (VmHWM), in bytes; 0 where /proc is missing."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), "VmHWM: 0 kB")
    return float(line.split()[1]) * 1024


# -- Debian's prometheus ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prometheus_samples(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("prometheus_tsdb_head_samples_appended_total")
    )


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def run_prometheus(
    binary: str, targets: list[tuple[str, str]], interval: float, seconds: float
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        sd = Path(tmp) / "targets.json"
        sd.write_text(
            json.dumps(
                [
                    {"targets": [addr], "labels": {"__metrics_path__": path, "host": f"t{i}"}}
                    for i, (addr, path) in enumerate(targets)
                ]
            )
        )
        config = Path(tmp) / "prometheus.yml"
        config.write_text(
            f"global: {{scrape_interval: {interval:g}s, scrape_timeout: {interval:g}s}}\n"
            "scrape_configs:\n"
            f"  - job_name: bench\n    file_sd_configs: [{{files: ['{sd}']}}]\n"
        )
        port = free_port()
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if prometheus_samples(port) > 0:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("prometheus did not start scraping within 60 s")
                time.sleep(0.2)
            time.sleep(2 * interval)  # warm-up, as for ours
            rss_start = psutil.Process(proc.pid).memory_info().rss
            cpu0, samples0, wall0 = (
                proc_cpu_seconds(proc.pid),
                prometheus_samples(port),
                time.monotonic(),
            )
            time.sleep(seconds)
            cpu1, samples1, wall1 = (
                proc_cpu_seconds(proc.pid),
                prometheus_samples(port),
                time.monotonic(),
            )
            rss_end = psutil.Process(proc.pid).memory_info().rss
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "samples": samples1 - samples0,
        "cpu": cpu1 - cpu0,
        "wall": wall1 - wall0,
        "rss_start": rss_start,
        "rss_end": rss_end,
        "down": 0,
    }


# -- the table ----------------------------------------------------------------------------


def print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=15.0, help="measured window per run")
    parser.add_argument("--repeat", type=int, default=5, help="parse runs (best is kept)")
    parser.add_argument(
        "--runs",
        type=lambda text: tuple(
            (int(c), float(i)) for c, i in (part.split("@") for part in text.split(","))
        ),
        default=((100, 1.0), (1000, 5.0)),
        help="targets@interval pairs, default 100@1,1000@5",
    )
    parser.add_argument(
        "--sqlite-flush-interval",
        type=float,
        default=SqliteSettings().flush_interval,
        metavar="SECONDS",
        help="storage.sqlite.flush_interval for our collector (default: the config default)",
    )
    parser.add_argument("--serve-targets", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_targets:
        asyncio.run(serve_targets(args.serve_targets))
        return

    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    rows = []
    for workload in workloads(100_000, args.repeat):
        if len(workload.bodies) == 1:
            ours(workload.bodies[0])
        mine = best_rate(ours, workload, args.repeat)
        reference = best_rate(prometheus_client, workload, args.repeat)
        rows.append(
            (f"parse: {workload.name}", f"{mine:,.0f}", f"{reference:,.0f} (prometheus_client)",
             f"{mine / reference:.1f}x")
        )  # fmt: skip

    binary = shutil.which("prometheus")
    server, ports = start_target_server()
    try:
        for count, interval in args.runs:
            targets = target_urls(ports, count)
            mine_run = asyncio.run(
                run_ours(targets, interval, args.seconds, args.sqlite_flush_interval)
            )
            ours_cpu_per_m = mine_run["cpu"] / mine_run["samples"] * 1e6
            name = f"{count} targets x 500 series every {interval:g}s"
            rows.append(
                (
                    f"ingest to SQLite: {name}",
                    f"{mine_run['samples'] / mine_run['cpu']:,.0f} samples/CPU-s",
                    f"{mine_run['samples'] / mine_run['wall']:,.0f} samples/s wall, "
                    f"{int(mine_run['down'])} failed scrapes",
                    "",
                )
            )
            rows.append(
                (
                    f"collector RSS: {name}",
                    f"{mine_run['rss_end'] / 1e6:,.0f} MB",
                    f"{mine_run['rss_start'] / 1e6:,.0f} MB after a {mine_run['warm_up']:.0f} s "
                    f"warm-up, peak {mine_run['rss_peak'] / 1e6:,.0f} MB",
                    "",
                )
            )
            if binary is None:
                rows.append(
                    (f"prometheus: {name}", "not installed", "apt-get install prometheus", "")
                )
                continue
            theirs = run_prometheus(binary, targets, interval, args.seconds)
            theirs_cpu_per_m = theirs["cpu"] / max(1.0, theirs["samples"]) * 1e6
            rows.append(
                (
                    f"CPU-s per million samples: {name}",
                    f"{ours_cpu_per_m:.2f} (ours)",
                    f"{theirs_cpu_per_m:.2f} (prometheus, RSS {theirs['rss_end'] / 1e6:,.0f} MB)",
                    f"{ours_cpu_per_m / theirs_cpu_per_m:.1f}x",
                )
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    print_table(("figure", "ours", "reference", "ratio"), rows)


if __name__ == "__main__":
    main()
