"""Batching writer: lines in, batches out, with backoff and an on-disk spool between them.

The InfluxDB async client neither batches nor retries, so this does. `add` only appends to
memory; one flush task cuts batches every `flush_interval` (or as soon as `batch_size` lines
wait), sends them, retries a failed batch `max_retries` times with exponential backoff (a
server's Retry-After wins), then puts it in the spool. While the spool holds anything, new
batches queue behind it, so replay keeps the order. A store that refuses us until an operator
acts (a wrong or rotated token, a missing bucket) is retried like one that is down: the
batches wait in the spool and are replayed once it answers. A batch too large for the store
is split in halves; only data the store will never accept (a 400 naming bad points) is
logged, counted and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from collector.storage.spool import Spool
from fleetpulse.core.storage import StorageError, StorageUnavailable
from fleetpulse.core.storehealth import Cause, HealthTracker
from fleetpulse.core.timeutil import now_ms

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 3600.0  # seconds; a larger Retry-After is treated as a broken header
# Batches' worth of new samples that may wait in memory while a batch is being retried; past
# it the retries stop and everything goes to the spool on disk. Without it, a Retry-After of
# an hour held an hour of samples in memory.
MAX_PENDING_BATCHES = 20


class WriteRetryable(StorageUnavailable):
    """The store is down or overloaded; the same batch may succeed later."""

    def __init__(
        self, message: str, retry_after: float | None = None, cause: Cause | None = None
    ) -> None:
        super().__init__(message, cause)
        self.retry_after = retry_after


class WriteRejected(StorageError):
    """The store refused the batch for good: data it will never accept."""


class WriteTooLarge(StorageError):
    """The store refused the batch for its size; smaller ones may pass."""

    default_cause = Cause.TOO_LARGE


Send = Callable[[str, list[str]], Awaitable[None]]  # (tier, lines); raises the two above


@dataclass(frozen=True, slots=True)
class BatchSettings:
    batch_size: int = 5000  # lines per request
    flush_interval: float = 1.0  # seconds
    max_retries: int = 3
    retry_interval: float = 1.0  # seconds before the first retry
    max_retry_delay: float = 30.0  # seconds
    close_timeout: float = 10.0  # seconds close() may spend sending what is buffered
    # Spooled batches sent per round before new data gets its turn (it queues behind them on
    # disk), so a long backlog never holds fresh samples in memory.
    replay_batches_per_round: int = 100


@dataclass(frozen=True, slots=True)
class WriteStats:
    """Counters for the collector's own /metrics (samples are lines)."""

    pending_samples: int
    sent_samples: int
    spooled_samples: int  # in the spool now
    spool_bytes: int
    spool_batches: int
    dropped_samples: int  # past the spool bound
    rejected_samples: int  # refused by the store
    last_error: str


class BatchWriter:
    def __init__(self, send: Send, spool: Spool, settings: BatchSettings) -> None:
        self.send = send
        self.spool = spool
        self.settings = settings
        self._pending: dict[str, list[str]] = {}
        self._pending_count = 0
        # Batches cut but not yet sent or spooled; one leaves only when it is safe elsewhere,
        # so a cancelled send (close timeout) still spools it.
        self._queue: list[tuple[str, list[str]]] = []
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._crowded = asyncio.Event()  # MAX_PENDING_BATCHES wait in memory: stop retrying
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one drain at a time: order on the wire and in the spool
        self._replay_not_before = 0.0
        self._replay_failures = 0
        self.sent_lines = 0
        self.rejected_lines = 0
        self.last_error = ""
        self.health = HealthTracker()  # the store's write health, as the sends find it

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="influx-batch-writer")

    def add(self, tier: str, lines: list[str]) -> None:
        if not lines:
            return
        self._pending.setdefault(tier, []).extend(lines)
        self._pending_count += len(lines)
        if self._pending_count >= self.settings.batch_size:
            self._wake.set()
        self._note_memory()

    def _in_memory(self) -> int:
        """Lines waiting in memory: buffered, and cut into batches not yet sent or spooled."""
        return self._pending_count + sum(len(lines) for _, lines in self._queue)

    def _note_memory(self) -> None:
        if self._in_memory() >= self.settings.batch_size * MAX_PENDING_BATCHES:
            self._crowded.set()
        else:
            self._crowded.clear()

    def stats(self) -> WriteStats:
        return WriteStats(
            pending_samples=self._in_memory(),
            sent_samples=self.sent_lines,
            spooled_samples=self.spool.lines,
            spool_bytes=self.spool.size_bytes,
            spool_batches=len(self.spool),
            dropped_samples=self.spool.dropped_lines,
            rejected_samples=self.rejected_lines,
            last_error=self.last_error,
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.flush_interval):
                    await self._wake.wait()
            self._wake.clear()
            if self._closed.is_set():
                break
            try:
                await self.flush()
                if len(self.spool) and loop.time() >= self._replay_not_before:
                    await self.replay()
            except OSError as exc:  # the spool's disk; keep running, the next round retries
                self.last_error = f"spool: {exc}"
                log.error("spool write failed dir=%s error=%s", self.spool.directory, exc)

    def _cut_batches(self) -> None:
        size = self.settings.batch_size
        for tier, lines in self._pending.items():
            self._queue += [(tier, lines[i : i + size]) for i in range(0, len(lines), size)]
        self._pending = {}
        self._pending_count = 0

    async def flush(self, *, retries: bool = True) -> None:
        """Send what is buffered now; what cannot be sent goes to the spool."""
        async with self._lock:
            self._cut_batches()
            while self._queue:
                tier, lines = self._queue[0]
                if len(self.spool) == 0 and await self._send_with_retries(
                    tier, lines, retries=retries
                ):
                    self._queue.pop(0)
                    self._note_memory()
                    continue
                first = len(self.spool) == 0
                await asyncio.to_thread(self.spool.append, tier, lines)
                self._queue.pop(0)
                self._note_memory()
                # One warning when spooling starts; "caught up" is logged when it ends.
                log.log(
                    logging.WARNING if first else logging.DEBUG,
                    "influxdb unavailable, spooling batches dir=%s tier=%s samples=%d error=%s",
                    self.spool.directory,
                    tier,
                    len(lines),
                    self.last_error,
                )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None and retry_after > 0:
            return min(retry_after, MAX_RETRY_AFTER)  # the server knows best
        return min(self.settings.max_retry_delay, self.settings.retry_interval * 2.0**attempt)

    async def _send_once(self, tier: str, lines: list[str]) -> tuple[bool, float | None]:
        """(done, retry_after): done when sent, or rejected for good and dropped. A batch too
        large is sent in halves (points are keyed by series and time, so halves sent again
        after a later failure overwrite themselves instead of adding up)."""
        try:
            await self.send(tier, lines)
        except WriteRetryable as exc:
            self._failed(exc)
            return False, exc.retry_after
        except WriteTooLarge as exc:
            if len(lines) > 1:
                log.warning(
                    "influxdb refused a batch as too large, splitting it tier=%s samples=%d",
                    tier,
                    len(lines),
                )
                half = len(lines) // 2
                done, retry_after = await self._send_once(tier, lines[:half])
                if not done:
                    return False, retry_after
                return await self._send_once(tier, lines[half:])
            self._drop(tier, lines, exc)
            return True, None
        except WriteRejected as exc:
            self._drop(tier, lines, exc)
            return True, None
        self._sent()
        self.sent_lines += len(lines)
        return True, None

    def _failed(self, exc: StorageError) -> None:
        self.last_error = str(exc)
        if self.health.write_failed(exc.cause, str(exc), now_ms()):
            # once per outage and cause: the spooling line and the retries follow at info
            log.error("influxdb writes failing cause=%s error=%s", exc.cause, exc)

    def _sent(self) -> None:
        ended = self.health.write_ok(now_ms())
        if ended is not None:
            log.warning(
                "influxdb writes recovered cause=%s failing_for=%.0fs",
                ended.cause,
                (now_ms() - ended.since_ms) / 1000,
            )

    def _drop(self, tier: str, lines: list[str], exc: StorageError) -> None:
        self.last_error = str(exc)
        self.rejected_lines += len(lines)
        log.error(
            "influxdb rejected a batch, dropped it tier=%s samples=%d "
            "rejected_samples_total=%d error=%s",
            tier,
            len(lines),
            self.rejected_lines,
            exc,
        )

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the writer closes or memory fills up."""
        closed = asyncio.ensure_future(self._closed.wait())
        crowded = asyncio.ensure_future(self._crowded.wait())
        try:
            await asyncio.wait((closed, crowded), timeout=seconds, return_when=FIRST_COMPLETED)
        finally:
            closed.cancel()
            crowded.cancel()

    async def _send_with_retries(self, tier: str, lines: list[str], *, retries: bool) -> bool:
        attempts = self.settings.max_retries + 1 if retries else 1
        for attempt in range(attempts):
            done, retry_after = await self._send_once(tier, lines)
            if done:
                return True
            if attempt + 1 >= attempts or self._closed.is_set():
                break
            delay = self._delay(attempt, retry_after)
            log.info(
                "influxdb write failed, retrying tier=%s samples=%d attempt=%d delay=%.3gs "
                "error=%s",
                tier,
                len(lines),
                attempt + 1,
                delay,
                self.last_error,
            )
            # should the pause be cut short, the spool's replay still waits it out
            self._replay_not_before = asyncio.get_running_loop().time() + delay
            await self._pause(delay)
            if self._crowded.is_set():
                log.info(
                    "influxdb retries cut short, spooling: samples=%d wait in memory",
                    self._pending_count,
                )
                break
        return False

    async def replay(self) -> None:
        """Send spooled batches oldest first: until the spool is empty, a send fails, or one
        round of `replay_batches_per_round` is done."""
        loop = asyncio.get_running_loop()
        replayed = 0
        async with self._lock:
            for _ in range(self.settings.replay_batches_per_round):
                if self._closed.is_set():
                    return
                entry = self.spool.peek()
                if entry is None:
                    if self._replay_failures or replayed:
                        log.info("spool replayed, influxdb writes caught up")
                    self._replay_failures = 0
                    return
                lines = await asyncio.to_thread(self.spool.read, entry)
                if not lines:
                    continue
                done, retry_after = await self._send_once(entry.tier, lines)
                if done:
                    await asyncio.to_thread(self.spool.remove, entry)
                    replayed += 1
                    continue
                delay = self._delay(self._replay_failures, retry_after)
                self._replay_failures += 1
                self._replay_not_before = loop.time() + delay
                log.info(
                    "spool replay paused batches=%d retry_in=%.3gs error=%s",
                    len(self.spool),
                    delay,
                    self.last_error,
                )
                return
            self._wake.set()  # more to replay: the next round starts right after a flush

    async def close(self) -> None:
        """Stop the flush task; send what is buffered once, or spool it for the next start."""
        self._closed.set()
        self._wake.set()
        if self._task is not None:
            try:
                async with asyncio.timeout(self.settings.close_timeout):
                    await self._task
            except TimeoutError:
                log.warning("influxdb batch writer did not stop in time; spooling what is left")
        try:
            async with asyncio.timeout(self.settings.close_timeout):
                await self.flush(retries=False)
        except TimeoutError:
            log.warning("influxdb did not answer while closing; spooling what is left")
        # Whatever is still queued (a send cut short) waits in the spool for the next start.
        self._cut_batches()
        for tier, lines in self._queue:
            await asyncio.to_thread(self.spool.append, tier, lines)
        self._queue = []
