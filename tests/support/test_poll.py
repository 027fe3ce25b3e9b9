"""The deadline poll every test waits with (`tests/support/poll.py`)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.support.poll import eventually, eventually_sync


async def test_eventually_gives_back_the_first_truthy_answer_while_the_loop_runs() -> None:
    seen: list[int] = []

    async def produce() -> None:
        for i in range(3):
            await asyncio.sleep(0.01)
            seen.append(i)

    task = asyncio.create_task(produce())
    assert await eventually(lambda: len(seen) == 3 and list(seen), "three items") == [0, 1, 2]
    await task


async def test_eventually_fails_naming_what_it_waited_for_and_the_last_answer() -> None:
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception) as caught:
        await eventually(lambda: [], "the replay", within=0.2)
    assert str(caught.value) == "timed out after 0.2s waiting for the replay; last answer: []"
    assert time.monotonic() - started >= 0.2


async def test_eventually_awaits_a_coroutine_check_and_gives_back_its_answer() -> None:
    asked = 0

    async def count() -> int | None:
        nonlocal asked
        asked += 1
        await asyncio.sleep(0)
        return asked if asked >= 3 else None

    assert await eventually(count, "the third answer", every=0.01) == 3


def test_eventually_sync_waits_for_another_thread() -> None:
    done = threading.Event()
    threading.Timer(0.05, done.set).start()
    assert eventually_sync(done.is_set, "the timer", within=10, every=0.01) is True


def test_eventually_sync_fails_after_its_deadline() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"waiting for the host; last answer: None"):
        eventually_sync(lambda: None, "the host", within=0.1, every=0.02)
