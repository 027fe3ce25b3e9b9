"""A store's write queue: samples from every scrape loop, written in large batches by one task.

A scrape loop does not wait for the store while there is room: it appends and goes back to
its schedule. When `max_pending` samples are waiting, `put` waits (up to `put_wait`) for the
writer to make room, so a slow store slows the scrapes down instead of growing memory; only
if it stays full are the oldest batches dropped, counted and logged.

With a `linger`, the writer waits that long after the first samples arrive (unless a batch
fills first, or someone waits for a flush) so that one write carries several scrapes of each
fast series. In SQLite, rows of one series share a B-tree page: two scrapes per transaction
dirty each page once instead of twice, which cut the collector's CPU per sample by a sixth at
a 1 s scrape interval (bench/collector.py). The SQLite adapter sets the linger only while some
target is scraped often enough for that to happen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from fleetpulse.core.failurelog import RepeatedFailure
from fleetpulse.core.samples import Sample
from fleetpulse.core.storage import StorageError, WriteObserver

log = logging.getLogger(__name__)

# Samples waiting for the store: at ~450 bytes each as scraped, 1M is ~450 MB at worst; a
# store that keeps up holds a few batches (1,000 targets x 500 series every 5 s: ~100k).
DEFAULT_MAX_PENDING = 1_000_000
DEFAULT_PUT_WAIT = 10.0  # how long a full queue holds a scrape loop before dropping the oldest
DEFAULT_WRITE_BATCH = 50_000  # samples per storage write: one transaction
# With a linger (storage.sqlite.flush_interval), a batch may grow to this before the linger
# ends early: two rounds of 100 targets x 500 series scraped every second.
LINGER_WRITE_BATCH = 100_000

Write = Callable[[list[Sample]], Awaitable[None]]  # raises StorageError


class WriteQueue:
    """Samples waiting for `write`, taken in batches by `run` (the owner's task)."""

    def __init__(
        self,
        write: Write,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        batch: int | None = None,
        put_wait: float = DEFAULT_PUT_WAIT,
        linger: float = 0.0,
    ) -> None:
        self.write = write
        self.observer: WriteObserver | None = None
        self.max_pending = max_pending
        self._batch = batch
        self.put_wait = put_wait
        self.set_linger(linger)
        self._flush_waiters = 0  # drained() callers: they end a linger at once
        self.pending: deque[Sequence[Sample]] = deque()
        self.pending_samples = 0
        self.dropped: dict[str, int] = {"queue_full": 0, "write_failed": 0}
        self._failures = RepeatedFailure(log, "storage write failed", "samples")
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._room = asyncio.Event()
        self._room.set()

    def set_linger(self, linger: float) -> None:
        self.linger = linger
        self.batch = self._batch or (LINGER_WRITE_BATCH if linger > 0 else DEFAULT_WRITE_BATCH)

    async def put(self, samples: Sequence[Sample]) -> None:
        if self.pending_samples + len(samples) > self.max_pending and self.pending:
            self._room.clear()
            self._wake.set()
            try:
                async with asyncio.timeout(self.put_wait):
                    while self.pending_samples + len(samples) > self.max_pending and self.pending:
                        await self._room.wait()
                        self._room.clear()
            except TimeoutError:
                pass
        self.pending.append(samples)
        self.pending_samples += len(samples)
        dropped = 0
        while self.pending_samples > self.max_pending and len(self.pending) > 1:
            old = self.pending.popleft()
            self.pending_samples -= len(old)
            dropped += len(old)
        if dropped:
            self.dropped["queue_full"] += dropped
            log.error(
                "write queue full dropped=%d pending=%d limit=%d",
                dropped,
                self.pending_samples,
                self.max_pending,
            )
        self._idle.clear()
        self._wake.set()

    def _take(self) -> list[Sample]:
        out: list[Sample] = []
        while self.pending and (not out or len(out) + len(self.pending[0]) <= self.batch):
            samples = self.pending.popleft()
            self.pending_samples -= len(samples)
            out.extend(samples)
        self._room.set()  # wakes the scrape loops waiting in put()
        return out

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.linger > 0:
                await self._linger()
            while self.pending:
                await self._write(self._take())
            self._idle.set()

    async def _linger(self) -> None:
        """Wait up to `linger` for more samples; a full batch, a flush request or a scrape
        loop waiting for room (a max_pending below the batch) ends it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger
        while self.pending_samples < self.batch and not self._flush_waiters and self._room.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._wake.wait()  # put() and drained() set it
            except TimeoutError:
                return

    async def _write(self, samples: list[Sample]) -> None:
        started = time.monotonic()
        try:
            await self.write(samples)
        except StorageError as exc:
            self.dropped["write_failed"] += len(samples)
            self._failures.failed(len(samples), str(exc))
            if self.observer is not None:
                self.observer.failed(len(samples), time.monotonic() - started)
        else:
            self._failures.succeeded()
            if self.observer is not None:
                self.observer.wrote(len(samples), time.monotonic() - started)

    async def drained(self) -> None:
        """Wait until everything queued so far has been written (or given up), without
        lingering."""
        self._flush_waiters += 1
        self._wake.set()
        try:
            await self._idle.wait()
        finally:
            self._flush_waiters -= 1
