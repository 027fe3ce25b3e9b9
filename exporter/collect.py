"""The collection loop: each source on its own interval in a thread, rendered once into a cache.

A scrape serves the cached bytes and never collects, so scrapes stay cheap and a slow source
never delays them. A failing source keeps its error counter and never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from prometheus_client import ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric as Family
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter.sources.base import Source, family

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceSchedule:
    source: Source
    interval: float
    timeout: float


class _FamilySet:
    """The object `generate_latest` renders: anything with `collect()` will do."""

    def __init__(self, families: Iterable[Family]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Family]:
        return self._families


class ExpositionCache:
    """Latest families per source, rendered to bytes once per change."""

    def __init__(self, source_names: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, list[Family]] = {}
        self._durations = {name: 0.0 for name in source_names}
        self._errors = {name: 0 for name in source_names}
        self._process = ProcessCollector(registry=None)
        self._text = b""
        self._openmetrics: bytes | None = None
        self.ready = asyncio.Event()

    def update(self, source: str, families: list[Family] | None, duration: float) -> None:
        """Store a source's result (None: it failed, so its families are dropped)."""
        with self._lock:
            self._durations[source] = duration
            if families is None:
                self._errors[source] += 1
                self._families.pop(source, None)
            else:
                self._families[source] = families
            self._text = generate_latest(_FamilySet(self._all_families()))
            self._openmetrics = None

    def _self_families(self) -> list[Family]:
        duration = family("exporter_collect_duration_seconds")
        errors = family("exporter_collect_errors_total")
        for name in sorted(self._durations):
            duration.add_metric([name], self._durations[name])
            errors.add_metric([name], float(self._errors[name]))
        return [duration, errors]

    def _all_families(self) -> list[Family]:
        out: list[Family] = []
        for name in sorted(self._families):
            out += self._families[name]
        out += self._self_families()
        out += self._process.collect()
        return out

    def text(self) -> bytes:
        return self._text

    def openmetrics(self) -> bytes:
        with self._lock:
            if self._openmetrics is None:
                self._openmetrics = generate_openmetrics(_FamilySet(self._all_families()))  # type: ignore[no-untyped-call]
            return self._openmetrics


def collect_once(source: Source) -> list[Family]:
    return source.collect()


async def run_source(
    schedule: SourceSchedule,
    cache: ExpositionCache,
    worker: ThreadPoolExecutor,
    renderer: ThreadPoolExecutor,
) -> None:
    """Collect one source forever on its interval; errors are counted and logged, not raised.

    The source runs on its own worker thread, never on asyncio's shared default pool: a
    collection that hangs (a dead NFS mount, an engine that stops answering) cannot be
    killed, and on the shared pool every later attempt would pin one more thread until the
    other sources and the server starved. Here a hung collection holds its one thread; the
    next turns count as errors ("still running") until it returns.

    A failure is logged as a warning when it starts and when it ends; repeats in between go
    to debug, so a host without Docker does not log the same line every interval forever.
    """
    source = schedule.source
    loop = asyncio.get_running_loop()
    next_run = time.monotonic()
    failing = False
    running: asyncio.Future[list[Family]] | None = None
    while True:
        started = time.monotonic()
        families: list[Family] | None = None
        problem = ""
        if running is not None and not running.done():
            problem = "the previous collection is still running"
        else:
            running = loop.run_in_executor(worker, collect_once, source)
            try:
                # shield: a timeout gives up waiting, it cannot stop the thread. asyncio.timeout
                # rather than wait_for: on 3.11 wait_for swallows a cancel that arrives as the
                # collection finishes, and the exporter then never stops
                async with asyncio.timeout(schedule.timeout):
                    families = await asyncio.shield(running)
            except TimeoutError:
                problem = f"timed out after {schedule.timeout:.1f}s"
            except Exception as exc:  # a source's own bug must not stop the other sources
                problem = f"{type(exc).__name__}: {exc}"
        duration = time.monotonic() - started
        if families is None:
            level = logging.DEBUG if failing else logging.WARNING
            log.log(level, "source failed source=%s error=%s", source.name, problem)
        elif failing:
            log.info("source recovered source=%s", source.name)
        failing = families is None
        await loop.run_in_executor(renderer, cache.update, source.name, families, duration)
        cache.ready.set()
        if duration > schedule.interval:
            log.warning(
                "slow collection source=%s took=%.2fs interval=%.0fs",
                source.name,
                duration,
                schedule.interval,
            )
        next_run += schedule.interval
        next_run = max(next_run, time.monotonic())
        await asyncio.sleep(next_run - time.monotonic())


async def run_collection(schedules: Sequence[SourceSchedule], cache: ExpositionCache) -> None:
    """Run every source until cancelled; one thread per source, one for rendering."""
    renderer = ThreadPoolExecutor(1, thread_name_prefix="exporter-render")
    workers = [
        ThreadPoolExecutor(1, thread_name_prefix=f"source-{s.source.name}") for s in schedules
    ]
    try:
        async with asyncio.TaskGroup() as group:
            for schedule, worker in zip(schedules, workers, strict=True):
                group.create_task(
                    run_source(schedule, cache, worker, renderer),
                    name=f"source-{schedule.source.name}",
                )
    finally:
        # a hung collection keeps its thread; do not wait for it on the way out
        for executor in (*workers, renderer):
            executor.shutdown(wait=False, cancel_futures=True)
