"""The one deadline poll of the tests: ask again until the answer is truthy or time is up.

`eventually` is for tests on an event loop (it sleeps with asyncio, so the servers under test
keep running); `eventually_sync` is for tests that drive processes or threads. Both give back
the first truthy answer, so a test can go on with what it waited for, and both fail naming
what they waited for and the last answer seen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal, NoReturn, TypeVar

import pytest

T = TypeVar("T")


def _timed_out(what: str, within: float, last: object) -> NoReturn:
    pytest.fail(f"timed out after {within:g}s waiting for {what}; last answer: {last!r}")


async def eventually(
    check: Callable[[], T | Literal[False] | None],
    what: str = "the condition",
    within: float = 20.0,
    every: float = 0.05,
) -> T:
    """The first truthy `check()`, asked every `every` seconds for `within` seconds."""
    deadline = time.monotonic() + within
    while not (answer := check()):
        if time.monotonic() > deadline:
            _timed_out(what, within, answer)
        await asyncio.sleep(every)
    return answer


def eventually_sync(
    check: Callable[[], T | Literal[False] | None],
    what: str = "the condition",
    within: float = 20.0,
    every: float = 0.2,
) -> T:
    """`eventually` for tests without an event loop: the same, sleeping the thread."""
    deadline = time.monotonic() + within
    while not (answer := check()):
        if time.monotonic() > deadline:
            _timed_out(what, within, answer)
        time.sleep(every)
    return answer
