"""Fixtures of the alert engine's tests: real receivers on loopback for notifications."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.alerting.recorders import HttpRecorder, SmtpRecorder, http_recorder, smtp_recorder


@pytest.fixture
async def webhook() -> AsyncIterator[HttpRecorder]:
    """An HTTP receiver that keeps every POST: json://, Slack and Discord deliver to it."""
    async with http_recorder() as recorder:
        yield recorder


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpRecorder]:
    """An SMTP server (aiosmtpd) that keeps every message: mailto:// delivers to it."""
    async with smtp_recorder() as recorder:
        yield recorder
