"""The one deadline poll of the tests: ask again until the answer is truthy or time is up.

`eventually` is for tests on an event loop (it sleeps with asyncio, so the servers under test
keep running; the check may be a coroutine function, to ask a store or an HTTP API);
`eventually_sync` is for tests that drive processes or threads. Both give back
the first truthy answer, so a test can go on with what it waited for, and both fail naming
what they waited for and the last answer seen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, NoReturn, TypeVar, overload

import pytest

T = TypeVar("T")


def _timed_out(what: str, within: float, last: object) -> NoReturn:
    pytest.fail(f"timed out after {within:g}s waiting for {what}; last answer: {last!r}")


@overload
async def eventually(
    check: Callable[[], Awaitable[T | Literal[False] | None]],
    what: str = ...,
    within: float = ...,
    every: float = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T | Literal[False] | None],
    what: str = ...,
    within: float = ...,
    every: float = ...,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    what: str = "the condition",
    within: float = 20.0,
    every: float = 0.05,
) -> Any:
    """The first truthy `check()` (awaited when it is a coroutine), asked every `every`
    seconds for `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        answer = check()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return answer
        if time.monotonic() > deadline:
            _timed_out(what, within, answer)
        await asyncio.sleep(every)


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
