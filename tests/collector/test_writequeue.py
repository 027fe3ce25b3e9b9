"""The SQLite adapter's write queue with a recording store: lingering, flushing on demand,
room for waiting scrape loops, the oldest dropped when the store stays slow, failed writes
counted and reported to the observer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from collector.storage.writequeue import WriteQueue
from fleetpulse.core.samples import Sample
from fleetpulse.core.storage import StorageUnavailable


class RecordingStore:
    """Only what the write queue calls: each write's sample count, in order. While `failing`,
    a write raises as an unreachable store does; while `held` is clear, a write waits."""

    def __init__(self) -> None:
        self.writes: list[int] = []
        self.wrote = asyncio.Event()
        self.called = asyncio.Event()
        self.failing = False
        self.held = asyncio.Event()
        self.held.set()

    async def write(self, samples: Sequence[Sample]) -> None:
        self.called.set()
        await self.held.wait()
        if self.failing:
            raise StorageUnavailable("store unreachable")
        self.writes.append(len(samples))
        self.wrote.set()


class RecordingObserver:
    """What the collector's /metrics learn of each write: (outcome, samples)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def wrote(self, samples: int, seconds: float) -> None:
        self.seen.append(("wrote", samples))

    def failed(self, samples: int, seconds: float) -> None:
        self.seen.append(("failed", samples))


@asynccontextmanager
async def running(queue: WriteQueue) -> AsyncIterator[WriteQueue]:
    writer = asyncio.create_task(queue.run())
    try:
        yield queue
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


def queued(count: int, start: int = 0) -> list[Sample]:
    return [Sample("m", (("host", "h"),), 1.0, start + n) for n in range(count)]


async def test_a_lingering_queue_writes_two_scrapes_at_once_and_flushes_on_demand() -> None:
    store = RecordingStore()
    queue = WriteQueue(store.write, linger=60.0, batch=1000)
    writer = asyncio.create_task(queue.run())
    try:
        await queue.put(queued(400))
        await queue.put(queued(400, 400))
        await asyncio.sleep(0.2)  # the writer ran meanwhile; the linger (60 s) holds it
        assert store.writes == [] and queue.pending_samples == 800

        await queue.put(queued(400, 800))  # the batch (1,000) is full: the linger ends
        async with asyncio.timeout(10):
            await store.wrote.wait()
            await queue.drained()
        assert store.writes == [800, 400], "whole scrapes, at most a batch per write"

        await queue.put(queued(10, 2000))
        async with asyncio.timeout(10):  # far less than the linger: drained() does not wait
            await queue.drained()
        assert store.writes == [800, 400, 10]
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


async def test_a_scrape_loop_waiting_for_room_ends_the_linger() -> None:
    store = RecordingStore()
    queue = WriteQueue(store.write, max_pending=100, linger=60.0, put_wait=60.0)
    writer = asyncio.create_task(queue.run())
    try:
        await queue.put(queued(100))
        async with asyncio.timeout(10):  # far less than the linger and than put_wait
            await queue.put(queued(50, 100))  # no room: it waits for the writer
        assert store.writes == [100] and queue.dropped["queue_full"] == 0
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


async def test_a_failed_write_is_counted_dropped_and_reported_and_the_next_one_goes_on() -> None:
    store = RecordingStore()
    observer = RecordingObserver()
    queue = WriteQueue(store.write)
    queue.observer = observer
    async with running(queue):
        store.failing = True
        await queue.put(queued(30))
        async with asyncio.timeout(10):
            await queue.drained()
        store.failing = False
        await queue.put(queued(20, 30))
        async with asyncio.timeout(10):
            await queue.drained()
    assert queue.dropped == {"queue_full": 0, "write_failed": 30}
    assert store.writes == [20]
    assert observer.seen == [("failed", 30), ("wrote", 20)]


async def test_a_store_that_stays_slow_gets_the_oldest_samples_dropped_not_memory_grown() -> None:
    store = RecordingStore()
    store.held.clear()  # the store does not answer
    queue = WriteQueue(store.write, max_pending=100, put_wait=0.05)
    async with running(queue):
        await queue.put(queued(60))
        async with asyncio.timeout(10):
            await store.called.wait()  # the writer took them and waits for the store
        await queue.put(queued(60, 60))
        await queue.put(queued(60, 120))  # no room within put_wait: the oldest batch goes
        assert queue.pending_samples == 60 and queue.dropped["queue_full"] == 60
        store.held.set()
        async with asyncio.timeout(10):
            await queue.drained()
    assert store.writes == [60, 60]
