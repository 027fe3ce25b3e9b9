"""Fixtures of the console's browser tests: chromium (skipped without it) and a page that
fails the test on any console error or failed request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from tests.console.harness import launch


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with launch() as started:
        yield started
