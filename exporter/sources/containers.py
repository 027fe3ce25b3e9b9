"""Container metrics from the Docker Engine API: state, health, restarts and per-container stats.

The calls go through exporter.dockerapi (the standard library's http.client) rather than
the docker SDK, which cost ~8 MiB of resident memory for three kinds of GET request.

One collection = one sparse list call, then for each kept container an inspect (restart
count, health) and, when it runs, one `one-shot` stats call. On Docker 20.10 a stats call
waits for the engine's next stats tick (up to ~1 s) whenever its stats collector is running,
so the calls run concurrently in a bounded thread pool (threads are made only as needed, up
to `concurrency`, so the cap follows the container count) under one deadline: they all wait
for the same tick. Persistent per-container stats streams were measured against this and cost
more CPU for the same freshness (docs/exporter.md, bench/exporter.py).

CPU percent comes from our own deltas between two collections, on the `docker stats`
scale (100 = one full core). If the engine is absent or goes away, `collect` raises: the
loop drops the container families and counts the error, and the next collection makes a
new client, so the source recovers by itself when the engine is back.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import Metric as Family

from exporter.dockerapi import Engine
from exporter.settings import DockerSettings, NameFilter
from exporter.sources.base import FLAG_OFF_HINT as BASE_FLAG_OFF_HINT
from exporter.sources.base import family

log = logging.getLogger(__name__)

UNIX_SOCKET = "unix:///var/run/docker.sock"
WINDOWS_PIPE = "npipe:////./pipe/docker_engine"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
Stats = Mapping[str, Any]


def engine_address(
    configured: str = "", environ: Mapping[str, str] | None = None, platform: str = sys.platform
) -> str:
    """Where the engine is: the configured address, else DOCKER_HOST, else the OS default."""
    if configured:
        return configured
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"]
    return WINDOWS_PIPE if platform == "win32" else UNIX_SOCKET


@dataclass(frozen=True, slots=True)
class CpuSample:
    total_ns: int
    system_ns: int  # host CPU time over all cores (Linux); 0 where the engine has none
    online_cpus: int
    read_at: float  # the engine's timestamp of the sample, seconds


@dataclass(slots=True)
class Observed:
    """What one collection learned about one container."""

    name: str
    id: str
    image: str
    state: str
    health: str = "none"
    restarts: int = 0
    project: str = ""
    service: str = ""
    stats: Stats | None = None


def cpu_percent(before: CpuSample, after: CpuSample) -> float | None:
    """CPU use between two samples, 100 = one full core (the `docker stats` formula)."""
    used = after.total_ns - before.total_ns
    if used < 0:
        return None  # the container restarted: its counter began again
    system = after.system_ns - before.system_ns
    if system > 0 and after.online_cpus:
        return used / system * after.online_cpus * 100.0
    elapsed = after.read_at - before.read_at
    return used / (elapsed * 1e9) * 100.0 if elapsed > 0 else None


def memory_usage(memory: Stats) -> float | None:
    """Usage minus inactive file cache, as `docker stats` computes it (cgroup v1 and v2); the
    private working set on a Windows engine, as `docker stats` shows there."""
    if "privateworkingset" in memory:
        return float(memory["privateworkingset"])
    usage = memory.get("usage")
    if usage is None:
        return None
    stats = memory.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):  # v1, then v2
        inactive = stats.get(key)
        if inactive is not None and inactive < usage:
            return float(usage - inactive)
    return float(usage)


def block_bytes(stats: Stats) -> tuple[float, float] | None:
    entries = (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive")
    if entries is None:
        storage = stats.get("storage_stats") or {}  # a Windows engine
        if "read_size_bytes" in storage:
            return float(storage["read_size_bytes"]), float(storage.get("write_size_bytes", 0))
        return None
    read = written = 0.0
    for entry in entries:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += entry.get("value", 0)
        elif op == "write":
            written += entry.get("value", 0)
    return read, written


def read_timestamp(text: str) -> float:
    """The engine's RFC 3339 `read` time (nanoseconds, Z) as a POSIX timestamp."""
    from datetime import UTC, datetime

    whole, _, rest = text.rstrip("Z").partition(".")
    fraction = "".join(c for c in rest if c.isdigit())[:9]
    try:
        stamp = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return time.time()
    return stamp + float(f"0.{fraction or 0}")


# A Windows engine counts container CPU time in 100 ns intervals (Linux: nanoseconds).
WINDOWS_CPU_UNIT_NS = 100


def cpu_sample(stats: Stats, engine_os: str = "linux") -> CpuSample | None:
    cpu = stats.get("cpu_stats") or {}
    total = (cpu.get("cpu_usage") or {}).get("total_usage")
    if not total:
        return None  # a container that just stopped: an empty sample, not a zero
    if engine_os == "windows":
        total *= WINDOWS_CPU_UNIT_NS
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or ())
    return CpuSample(
        int(total),
        int(cpu.get("system_cpu_usage") or 0),
        int(online or 0),
        read_timestamp(str(stats.get("read", ""))),
    )


DEFAULT_DOCKER = DockerSettings()
ALL_NAMES = NameFilter()
# how to turn this source off; `fleetpulse up` passes its own words (it has no such flag)
FLAG_OFF_HINT = BASE_FLAG_OFF_HINT.format(source="containers")


class EngineUnavailable(ConnectionError):
    """No Docker engine answers; the message says where we looked and what to do."""

    def __init__(self, address: str, cause: Exception, off_hint: str = FLAG_OFF_HINT) -> None:
        text = str(cause)
        if "No such file" in text or "FileNotFoundError" in text:
            reason = "nothing listens there"
        elif "Connection refused" in text or "ConnectionRefused" in text:
            reason = "connection refused"
        elif "Permission denied" in text or "PermissionError" in text:
            reason = "permission denied (add the exporter's user to the docker group)"
        else:
            reason = text
        super().__init__(
            f"no Docker engine at {address}: {reason}; container metrics return when it "
            f"answers (turn them off with {off_hint})"
        )


class ContainerSource:
    name = "containers"

    def __init__(
        self,
        docker_settings: DockerSettings = DEFAULT_DOCKER,
        names: NameFilter = ALL_NAMES,
        deadline: float = 10.0,
        off_hint: str = FLAG_OFF_HINT,
    ) -> None:
        self.settings = docker_settings
        self.off_hint = off_hint
        self.names = names
        self.deadline = deadline  # the whole fan-out of inspect + stats calls
        self.address = engine_address(docker_settings.host)
        self._client: Engine | None = None
        self._lock = threading.Lock()  # one collection at a time, and the CPU memory
        self._previous: dict[str, CpuSample] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=docker_settings.concurrency, thread_name_prefix="docker-stats"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._drop_client()

    def _connect(self) -> Engine:
        if self._client is None:
            # DOCKER_TLS_VERIFY and DOCKER_CERT_PATH apply to tcp:// as in the docker CLI
            client = Engine(self.address, self.settings.request_timeout)  # EngineAddressError
            try:
                client.negotiate()  # so an old engine gets an API version it speaks
            except (OSError, ValueError) as exc:
                client.close()
                raise EngineUnavailable(self.address, exc, self.off_hint) from None
            self._client = client
            log.info("docker engine connected address=%s api=%s", self.address, client.api_version)
        return self._client

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def collect(self) -> list[Family]:
        with self._lock:
            try:
                client = self._connect()
                listed = client.containers()
                observed = self._observe(client, listed)
            except Exception:
                # the engine went away (or never was): start afresh with a new client
                self._drop_client()
                raise
            return self._families(observed, client.os_type)

    def _observe(self, client: Engine, listed: list[dict[str, Any]]) -> list[Observed]:
        wanted: list[Observed] = []
        for entry in listed:
            names = entry.get("Names") or [entry.get("Id", "")[:12]]
            name = str(names[0]).lstrip("/")
            if not self.names.keeps(name):
                continue
            labels = entry.get("Labels") or {}
            wanted.append(
                Observed(
                    name=name,
                    id=str(entry.get("Id", "")),
                    image=str(entry.get("Image", "")),
                    state=str(entry.get("State", "")),
                    project=labels.get(COMPOSE_PROJECT, ""),
                    service=labels.get(COMPOSE_SERVICE, ""),
                )
            )
        futures = {self._pool.submit(self._details, client, item): item for item in wanted}
        done, late = concurrent.futures.wait(futures, timeout=self.deadline)
        failures = 0
        for future in done:
            error = future.exception()
            if error is not None:
                failures += 1
                log.debug(
                    "container details failed container=%s error=%s", futures[future].name, error
                )
        if late or failures:
            log.warning(
                "container stats incomplete late=%d failed=%d of=%d deadline=%.1fs",
                len(late),
                failures,
                len(wanted),
                self.deadline,
            )
            for future in late:
                future.cancel()
        if wanted and failures == len(wanted) and not late:
            # nothing answered at all: the engine is in trouble, not one container
            raise next(iter(done)).exception() or RuntimeError("no container answered")
        return wanted

    @staticmethod
    def _details(client: Engine, item: Observed) -> None:
        """Fill in `item` (runs in a pool thread): inspect, then stats if it runs."""
        inspected = client.inspect(item.id)
        state = inspected.get("State") or {}
        item.state = str(state.get("Status") or item.state)
        item.health = str((state.get("Health") or {}).get("Status") or "none")
        item.restarts = int(inspected.get("RestartCount") or 0)
        if item.state == "running":
            item.stats = client.stats(item.id)

    def _families(self, observed: list[Observed], engine_os: str = "linux") -> list[Family]:
        names = (
            "container_info",
            "container_up",
            "container_restarts_total",
            "container_cpu_seconds_total",
            "container_cpu_usage_percent",
            "container_memory_usage_bytes",
            "container_memory_limit_bytes",
            "container_memory_usage_percent",
            "container_network_receive_bytes_total",
            "container_network_transmit_bytes_total",
            "container_network_receive_packets_total",
            "container_network_transmit_packets_total",
            "container_block_read_bytes_total",
            "container_block_written_bytes_total",
            "container_pids",
        )
        fams = {n: family(n) for n in names}
        previous, self._previous = self._previous, {}
        for item in sorted(observed, key=lambda o: o.name):
            key = [item.name, item.project, item.service]
            fams["container_info"].add_metric(
                [
                    item.name,
                    item.id[:12],
                    item.image,
                    item.state,
                    item.health,
                    item.project,
                    item.service,
                ],
                1.0,
            )
            fams["container_up"].add_metric(key, 1.0 if item.state == "running" else 0.0)
            fams["container_restarts_total"].add_metric(key, float(item.restarts))
            if item.stats is None:
                continue
            stats = item.stats
            sample = cpu_sample(stats, engine_os)
            if sample is not None:
                self._previous[item.id] = sample
                fams["container_cpu_seconds_total"].add_metric(key, sample.total_ns / 1e9)
                before = previous.get(item.id)
                percent = cpu_percent(before, sample) if before else None
                if percent is not None:
                    fams["container_cpu_usage_percent"].add_metric(key, percent)
            memory = stats.get("memory_stats") or {}
            used = memory_usage(memory)
            if used is not None:
                fams["container_memory_usage_bytes"].add_metric(key, used)
                limit = memory.get("limit")
                if limit:
                    fams["container_memory_limit_bytes"].add_metric(key, float(limit))
                    fams["container_memory_usage_percent"].add_metric(key, used / limit * 100.0)
            for interface, io in sorted((stats.get("networks") or {}).items()):
                labels = [*key, interface]
                fams["container_network_receive_bytes_total"].add_metric(
                    labels, float(io.get("rx_bytes", 0))
                )
                fams["container_network_transmit_bytes_total"].add_metric(
                    labels, float(io.get("tx_bytes", 0))
                )
                fams["container_network_receive_packets_total"].add_metric(
                    labels, float(io.get("rx_packets", 0))
                )
                fams["container_network_transmit_packets_total"].add_metric(
                    labels, float(io.get("tx_packets", 0))
                )
            block = block_bytes(stats)
            if block is not None:
                fams["container_block_read_bytes_total"].add_metric(key, block[0])
                fams["container_block_written_bytes_total"].add_metric(key, block[1])
            pids = (stats.get("pids_stats") or {}).get("current")
            if pids is not None:
                fams["container_pids"].add_metric(key, float(pids))
        return [f for f in fams.values() if f.samples]
