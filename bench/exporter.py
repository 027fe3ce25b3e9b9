"""Exporter benchmark: our exporter against Debian's prometheus-node-exporter, plus containers.

Starts both on loopback ports, 20 busybox containers on the private Docker engine
(.ci/start-docker), and prints one table:

- scrape latency p50/p99 over 200 scrapes each (one keep-alive connection, as Prometheus);
- our CPU seconds per scrape (collections parked with a 1 h interval) and per collection
  (an idle exporter collecting every 2 s), and the share of one core at the 15 s default;
- the container source's collection time with 20 running containers;
- resident memory at the start and the end of 2,000 scrapes (collecting every 2 s meanwhile);
- the two ways to get container CPU at equal freshness (one reading per container per
  interval): concurrent one_shot polling (what the exporter does) against persistent
  per-container stats streams (Glances), in CPU seconds of the client, dockerd and containerd.

Usage: .venv/bin/python bench/exporter.py [--containers 20] [--scrapes 200]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.table import print_figures  # noqa: E402
from exporter.settings import DockerSettings, NameFilter  # noqa: E402
from exporter.sources.containers import ContainerSource  # noqa: E402
from tests.support.docker_engine import DockerEngine, DockerSandbox  # noqa: E402

NODE_EXPORTER = "prometheus-node-exporter"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(port: int, path: str, needle: bytes = b"", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            body = conn.getresponse().read()
            conn.close()
            if needle in body:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"127.0.0.1:{port}{path} not ready (waiting for {needle!r})")
        time.sleep(0.2)


def scrape(port: int, count: int) -> list[float]:
    """Latencies (s) of `count` scrapes on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            response.read()
            out.append(time.perf_counter() - started)
    finally:
        conn.close()
    return out


def cpu_seconds(*procs: psutil.Process) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def metric(port: int, prefix: str) -> float | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    conn.close()
    for line in body.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


@contextlib.contextmanager
def our_exporter(
    engine: DockerEngine, prefix: str, interval: str, ready: bytes | None = None
) -> Iterator[tuple[int, psutil.Process]]:
    port = free_port()
    env = {**os.environ, "DOCKER_HOST": engine.url}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleetpulse",
            "exporter",
            "--listen",
            f"127.0.0.1:{port}",
            "--interval",
            interval,
            "--container-include",
            f"{prefix}-*",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # ready when the containers are in and the first CPU percent could be computed
        wait_http(port, "/metrics", ready or f'container="{prefix}-c0"'.encode())
        yield port, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def node_exporter() -> Iterator[tuple[int, psutil.Process] | None]:
    binary = shutil.which(NODE_EXPORTER) or f"/usr/bin/{NODE_EXPORTER}"
    if not Path(binary).exists():
        yield None
        return
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(port, "/metrics", b"node_cpu_seconds_total")
        yield port, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def engine_processes(engine: DockerEngine) -> list[psutil.Process]:
    procs = []
    for pidfile in (engine.pidfile, engine.directory / "exec" / "containerd" / "containerd.pid"):
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            procs.append(psutil.Process(int(pidfile.read_text().strip())))
    return procs


def poll_vs_stream(
    engine: DockerEngine,
    box: DockerSandbox,
    interval: float,
    rounds: int,
    busy_collections: list[float],
) -> dict[str, tuple[float, float]]:
    """CPU seconds (client, engine) for `rounds` readings per container, both ways."""
    me = psutil.Process()
    engine_procs = engine_processes(engine)
    results: dict[str, tuple[float, float]] = {}

    source = ContainerSource(
        DockerSettings(host=engine.url), NameFilter(include=(f"{box.prefix}-*",))
    )
    try:
        source.collect()  # connect once, as the running exporter would be
        mine, theirs = cpu_seconds(me), cpu_seconds(*engine_procs)
        next_at = time.monotonic()
        for _ in range(rounds):
            source.collect()
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        results["poll (one_shot, concurrent)"] = (
            cpu_seconds(me) - mine,
            cpu_seconds(*engine_procs) - theirs,
        )
    finally:
        source.close()

    import docker

    client = docker.APIClient(base_url=engine.url, version="1.41", timeout=30, max_pool_size=64)
    stop = threading.Event()
    latest: dict[str, dict[str, object]] = {}
    ids = [c.id for c in box.containers if c.id]

    def follow(container_id: str) -> None:
        stream = client.stats(container_id, stream=True, decode=True)
        for sample in stream:
            latest[container_id] = sample
            if stop.is_set():
                break

    mine, theirs = cpu_seconds(me), cpu_seconds(*engine_procs)
    threads = [threading.Thread(target=follow, args=(i,), daemon=True) for i in ids]
    for thread in threads:
        thread.start()
    time.sleep(interval * rounds)
    results["persistent streams"] = (cpu_seconds(me) - mine, cpu_seconds(*engine_procs) - theirs)

    # While streams keep the engine's stats collector ticking, a one_shot call waits for
    # its next tick (~1 s): the worst case of a polling collection, timed here.
    source = ContainerSource(
        DockerSettings(host=engine.url), NameFilter(include=(f"{box.prefix}-*",))
    )
    try:
        for _ in range(3):
            started = time.perf_counter()
            source.collect()
            busy_collections.append(time.perf_counter() - started)
    finally:
        source.close()
    stop.set()
    for thread in threads:
        thread.join(5)
    client.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--rss-scrapes", type=int, default=2000)
    parser.add_argument("--compare-rounds", type=int, default=6)
    parser.add_argument("--compare-interval", type=float, default=5.0)
    args = parser.parse_args()

    engine = DockerEngine()
    if not engine.is_ready():
        engine.start()
    rows: list[tuple[str, str]] = []
    with engine.sandbox("bench") as box:
        # the same cost with no container yet: what a host without workloads pays
        no_containers = b'exporter_collect_duration_seconds{source="containers"}'
        with our_exporter(engine, box.prefix, "2s", no_containers) as (port, proc):
            time.sleep(2.5)
            before, started = cpu_seconds(proc), time.monotonic()
            time.sleep(10.0)
            idle_per_collection = (cpu_seconds(proc) - before) / (
                (time.monotonic() - started) / 2.0
            )
        net = box.create_network("net")
        for i in range(args.containers):
            box.run_container(f"c{i}", "sleep 3600", network=net)

        with node_exporter() as node:
            node_lat: list[float] = []
            if node is not None:
                scrape(node[0], 10)
                node_lat = scrape(node[0], args.scrapes)

        # scrape cost: collections parked (1 h interval) after the first one
        with our_exporter(engine, box.prefix, "1h") as (port, proc):
            scrape(port, 10)
            before = cpu_seconds(proc)
            ours = scrape(port, args.scrapes)
            per_scrape = (cpu_seconds(proc) - before) / args.scrapes
            body_size = len(scrape_body(port))

        # collection cost and memory: collecting every 2 s
        with our_exporter(engine, box.prefix, "2s") as (port, proc):
            time.sleep(2.5)
            durations = []
            before, started = cpu_seconds(proc), time.monotonic()
            for _ in range(10):
                time.sleep(2.0)
                value = metric(port, 'exporter_collect_duration_seconds{source="containers"}')
                if value is not None:
                    durations.append(value)
            per_collection = (cpu_seconds(proc) - before) / ((time.monotonic() - started) / 2.0)
            rss_start = proc.memory_info().rss
            scrape(port, args.rss_scrapes)
            rss_end = proc.memory_info().rss
            uss_end = proc.memory_full_info().uss

        busy: list[float] = []
        compare = poll_vs_stream(engine, box, args.compare_interval, args.compare_rounds, busy)

    p50, p99 = quantile(ours, 0.5), quantile(ours, 0.99)
    rows.append(("scrapes per exporter", f"{args.scrapes}"))
    rows.append(("fleetpulse scrape p50 / p99", f"{p50 * 1e3:.2f} ms / {p99 * 1e3:.2f} ms"))
    rows.append(("fleetpulse exposition size", f"{body_size / 1024:.1f} KiB"))
    if node_lat:
        n50, n99 = quantile(node_lat, 0.5), quantile(node_lat, 0.99)
        rows.append(("node_exporter scrape p50 / p99", f"{n50 * 1e3:.2f} ms / {n99 * 1e3:.2f} ms"))
        rows.append(("p50 ratio fleetpulse / node_exporter", f"{p50 / n50:.2f} (target <= 0.5)"))
    else:
        rows.append(("node_exporter", f"not installed (apt-get install {NODE_EXPORTER})"))
    rows.append(("CPU per scrape", f"{per_scrape * 1e3:.2f} ms"))
    rows.append(
        (
            f"CPU per collection ({args.containers} containers, all sources)",
            f"{per_collection * 1e3:.1f} ms",
        )
    )
    for count, cost in ((0, idle_per_collection), (args.containers, per_collection)):
        share = (cost + per_scrape) / 15.0 * 100
        rows.append(
            (
                f"one core at 15 s interval + 1 scrape/15 s, {count} containers",
                f"{share:.2f} % (target < 1 %)",
            )
        )
    if durations:
        rows.append(
            (
                f"container collection, {args.containers} running",
                f"median {statistics.median(durations):.2f} s, max {max(durations):.2f} s "
                "(target <= 1.5 s)",
            )
        )
    if busy:
        rows.append(
            (
                f"container collection, {args.containers} running, engine collector busy",
                f"median {statistics.median(busy):.2f} s, max {max(busy):.2f} s (target <= 1.5 s)",
            )
        )
    rows.append(
        (
            f"RSS start / end of {args.rss_scrapes} scrapes",
            f"{rss_start / 2**20:.1f} MiB / {rss_end / 2**20:.1f} MiB "
            f"= {rss_end / 1e6:.1f} MB (target <= 50 MB)",
        )
    )
    rows.append(("USS (memory only this process holds) at the end", f"{uss_end / 2**20:.1f} MiB"))
    window = args.compare_interval * args.compare_rounds
    for name, (client, engine_cpu) in compare.items():
        rows.append(
            (
                f"container CPU via {name}, {window:.0f} s",
                f"client {client:.2f} s + engine {engine_cpu:.2f} s CPU",
            )
        )
    print_figures(rows, heading="measure", rule=40)
    return 0


def scrape_body(port: int) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    body = conn.getresponse().read()
    conn.close()
    return body


if __name__ == "__main__":
    raise SystemExit(main())
