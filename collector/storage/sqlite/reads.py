"""Reads travel together: what waits at one moment runs as one job on the reader thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fleetpulse.core.storage import StorageUnavailable

T = TypeVar("T")


class ReadBatcher:
    """Runs the reads waiting at one moment as one job on the reader thread and answers them
    with one wake-up of the event loop. With 1,000 rule queries in flight, a wake-up per answer
    made the thread and the loop trade the GIL a thousand times: 0.7-0.9 s instead of 0.33 s."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self._waiting: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._scheduled = False

    def submit(self, loop: asyncio.AbstractEventLoop, fn: Callable[[], T]) -> asyncio.Future[T]:
        future: asyncio.Future[T] = loop.create_future()
        self._waiting.append((fn, future))
        if not self._scheduled:
            # dispatch after this loop iteration, so reads issued together travel together
            self._scheduled = True
            loop.call_soon(self._dispatch, loop)
        return future

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._waiting = self._waiting, []
        self._scheduled = False
        try:
            self.pool.submit(self._run_batch, loop, batch)
        except RuntimeError as exc:  # the store is closing
            for _, future in batch:
                if not future.done():
                    future.set_exception(StorageUnavailable(f"sqlite store closed: {exc}"))

    def _run_batch(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Callable[[], Any], asyncio.Future[Any]]],
    ) -> None:
        answers: list[tuple[asyncio.Future[Any], Any, Exception | None]] = []
        for fn, future in batch:
            if future.cancelled():
                continue  # its caller timed out or went away
            try:
                answers.append((future, fn(), None))
            except Exception as exc:  # handed to the caller, who maps it to a StorageError
                answers.append((future, None, exc))
        with contextlib.suppress(RuntimeError):  # the loop closed while we read
            loop.call_soon_threadsafe(self._deliver, answers)

    @staticmethod
    def _deliver(answers: list[tuple[asyncio.Future[Any], Any, Exception | None]]) -> None:
        for future, value, exc in answers:
            if future.done():
                continue
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(value)
