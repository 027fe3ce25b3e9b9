"""The batching writer in front of InfluxDB, against a real spool folder and a stand-in store
that fails, asks for a pause or refuses as told: batches and their order, retries with backoff
and Retry-After, the spool when retries run out, replay oldest first, refusals dropped and
counted, and what a close leaves for the next start."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from collector.storage.batch import BatchSettings, BatchWriter, WriteRejected, WriteRetryable
from collector.storage.spool import Spool

MIB = 1024 * 1024


class StandInStore:
    """Takes batches like InfluxDB's write API: the next `failures` sends fail as an overloaded
    store does (with `retry_after`, if set), and while `refusing` every send is refused for
    good. Each batch it took is kept, in order."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, list[str]]] = []
        self.attempts = 0
        self.failures = 0
        self.retry_after: float | None = None
        self.refusing = False
        self.took = asyncio.Event()

    async def send(self, tier: str, lines: list[str]) -> None:
        self.attempts += 1
        if self.refusing:
            raise WriteRejected("HTTP 400: unable to parse")
        if self.failures:
            self.failures -= 1
            raise WriteRetryable("HTTP 503: overloaded", self.retry_after)
        self.taken.append((tier, list(lines)))
        self.took.set()

    def lines(self) -> list[str]:
        return [line for _, lines in self.taken for line in lines]


def lines(start: int, count: int) -> list[str]:
    return [f"m,host=h value={i}.0 {1_764_237_600_000 + i}" for i in range(start, start + count)]


def settings(**overrides: float) -> BatchSettings:
    """Quick retries, so a test waits milliseconds, never the production seconds."""
    values: dict[str, float] = {
        "batch_size": 10,
        "flush_interval": 60.0,  # the tests flush; the flush task only when they start it
        "max_retries": 3,
        "retry_interval": 0.01,
        "max_retry_delay": 1.0,
        "close_timeout": 10.0,
    }
    values.update(overrides)
    return BatchSettings(
        batch_size=int(values["batch_size"]),
        flush_interval=values["flush_interval"],
        max_retries=int(values["max_retries"]),
        retry_interval=values["retry_interval"],
        max_retry_delay=values["max_retry_delay"],
        close_timeout=values["close_timeout"],
    )


@asynccontextmanager
async def writer_on(
    store: StandInStore, spool_dir: Path, batch: BatchSettings
) -> AsyncIterator[BatchWriter]:
    writer = BatchWriter(store.send, Spool.open(spool_dir, MIB), batch)
    try:
        yield writer
    finally:
        await writer.close()


def spooled_files(folder: Path) -> int:
    return len(list(folder.glob("*.lp.gz")))


def retry_delays(records: Sequence[logging.LogRecord]) -> list[str]:
    found = (re.search(r"delay=(\S+)s", r.getMessage()) for r in records)
    return [m.group(1) for m in found if m and "retrying" in m.string]


async def test_lines_leave_in_batches_of_batch_size_per_tier_in_the_order_added(
    tmp_path: Path,
) -> None:
    store = StandInStore()
    async with writer_on(store, tmp_path, settings(batch_size=10)) as writer:
        writer.add("raw", lines(0, 25))
        writer.add("daily", ['alert_events,host=h state="firing" 1'])
        assert writer.stats().pending_samples == 26
        await writer.flush()
        stats = writer.stats()
    assert [(tier, len(batch)) for tier, batch in store.taken] == [
        ("raw", 10),
        ("raw", 10),
        ("raw", 5),
        ("daily", 1),
    ]
    assert store.lines()[:25] == lines(0, 25)
    assert (stats.pending_samples, stats.sent_samples, stats.spool_batches) == (0, 26, 0)


async def test_the_flush_task_sends_by_itself_once_a_batch_is_full(tmp_path: Path) -> None:
    store = StandInStore()
    async with writer_on(store, tmp_path, settings(batch_size=10)) as writer:
        writer.start()
        writer.add("raw", lines(0, 10))  # a full batch wakes it long before flush_interval
        async with asyncio.timeout(10):
            await store.took.wait()
    assert store.lines() == lines(0, 10)


async def test_a_failing_send_is_retried_with_doubling_backoff_up_to_max_retry_delay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collector.storage.batch")
    store = StandInStore()
    store.failures = 3  # the fourth attempt, the last retry, gets through
    batch = settings(max_retries=3, retry_interval=0.01, max_retry_delay=0.03)
    async with writer_on(store, tmp_path, batch) as writer:
        writer.add("raw", lines(0, 5))
        await writer.flush()
        stats = writer.stats()
    assert store.attempts == 4 and store.lines() == lines(0, 5)
    assert retry_delays(caplog.records) == ["0.01", "0.02", "0.03"]
    assert (stats.spool_batches, stats.sent_samples) == (0, 5)


async def test_the_stores_retry_after_wins_over_the_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collector.storage.batch")
    store = StandInStore()
    store.failures = 1
    store.retry_after = 0.02
    # our own backoff alone would wait an hour: the flush ends within the deadline only if the
    # store's 20 ms are what the writer waits
    batch = settings(retry_interval=3600.0, max_retry_delay=3600.0)
    async with writer_on(store, tmp_path, batch) as writer:
        writer.add("raw", lines(0, 5))
        async with asyncio.timeout(10):
            await writer.flush()
    assert store.lines() == lines(0, 5)
    assert retry_delays(caplog.records) == ["0.02"]


async def test_a_batch_that_keeps_failing_is_spooled_and_new_ones_queue_behind_it(
    tmp_path: Path,
) -> None:
    store = StandInStore()
    store.failures = 1_000  # down
    async with writer_on(store, tmp_path, settings(max_retries=1)) as writer:
        writer.add("raw", lines(0, 10))
        await writer.flush()
        assert store.attempts == 2  # the send and its one retry
        assert (len(writer.spool), writer.spool.lines) == (1, 10)

        store.failures = 0  # back, but the spool is older than what comes next
        writer.add("raw", lines(10, 10))
        await writer.flush()
        assert store.taken == [], "new data waits behind the spool"
        assert spooled_files(tmp_path) == 2

        await writer.replay()
        stats = writer.stats()
    assert store.lines() == lines(0, 20), "oldest first"
    assert (stats.spool_batches, stats.spooled_samples, stats.sent_samples) == (0, 0, 20)
    assert spooled_files(tmp_path) == 0


async def test_replay_waits_while_the_store_is_down_then_sends_oldest_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collector.storage.batch")
    store = StandInStore()
    store.failures = 1_000
    async with writer_on(store, tmp_path, settings(max_retries=0)) as writer:
        for start in (0, 10, 20):
            writer.add("raw", lines(start, 10))
            await writer.flush()
        assert len(writer.spool) == 3

        await writer.replay()  # still down: nothing leaves the spool
        assert len(writer.spool) == 3 and store.taken == []
        assert any("spool replay paused" in r.getMessage() for r in caplog.records)

        store.failures = 0
        await writer.replay()
    assert store.lines() == lines(0, 30)
    assert any("spool replayed" in r.getMessage() for r in caplog.records)


async def test_a_refused_batch_is_dropped_and_counted_never_retried_nor_spooled(
    tmp_path: Path,
) -> None:
    store = StandInStore()
    store.refusing = True
    async with writer_on(store, tmp_path, settings(max_retries=3)) as writer:
        writer.add("raw", lines(0, 7))
        await writer.flush()
        stats = writer.stats()
    assert store.attempts == 1
    assert (stats.rejected_samples, stats.spool_batches, stats.sent_samples) == (7, 0, 0)
    assert "HTTP 400" in stats.last_error


async def test_what_close_cannot_send_waits_in_the_spool_for_the_next_start(
    tmp_path: Path,
) -> None:
    store = StandInStore()
    store.failures = 1_000
    first = BatchWriter(store.send, Spool.open(tmp_path, MIB), settings(max_retries=3))
    first.add("raw", lines(0, 12))
    await first.close()
    # one try without retries; the batch after it queues behind it in the spool
    assert store.attempts == 1
    assert spooled_files(tmp_path) == 2

    store.failures = 0
    async with writer_on(store, tmp_path, settings()) as second:
        assert second.stats().spooled_samples == 12
        await second.replay()
    assert store.lines() == lines(0, 12)
