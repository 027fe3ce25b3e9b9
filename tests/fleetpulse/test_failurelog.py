"""RepeatedFailure: one line when an outage starts, one a minute while it lasts, one at the
end if anything failed unreported. The clock is the test's (the logic is time, not I/O)."""

from __future__ import annotations

import logging

import pytest

from fleetpulse.core.failurelog import RepeatedFailure

log = logging.getLogger("test.failurelog")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.levelname} {r.getMessage()}" for r in caplog.records if r.name == log.name]


def test_an_outage_is_one_line_then_one_a_minute_then_one_at_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    failures = RepeatedFailure(log, "storage write failed", "samples", clock=clock)
    for _ in range(30):  # a batch a second
        failures.failed(100, "disk full")
        clock.now += 1
    failures.succeeded()  # a small write fitting in a freed page: no recovery yet
    for _ in range(40):
        failures.failed(100, "disk full")
        clock.now += 1
    clock.now += 10
    failures.succeeded()
    assert lines(caplog) == [
        "ERROR storage write failed samples=100 error=disk full",
        "ERROR storage write failed (still failing) samples=6000 error=disk full",
        "WARNING storage write failed samples=900 more since the last report, then recovered",
    ]


def test_a_new_error_is_said_at_once_and_a_quiet_recovery_says_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    failures = RepeatedFailure(log, "alert events not written", "events", clock=clock)
    failures.failed(1, "disk full")
    clock.now += 1
    failures.failed(2, "read-only file system")
    clock.now += 10
    failures.succeeded()
    failures.succeeded()
    failures.failed(3, "read-only file system")  # a new outage: said again
    assert lines(caplog) == [
        "ERROR alert events not written events=1 error=disk full",
        "ERROR alert events not written events=2 error=read-only file system",
        "ERROR alert events not written events=3 error=read-only file system",
    ]
