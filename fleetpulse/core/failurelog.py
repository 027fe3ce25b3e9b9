"""One log line per outage, not one per attempt.

A full disk fails every write the collector makes: a line per batch buried the one that said
why under thousands that said nothing new. A `RepeatedFailure` logs the first failure (and
each change of its error) at once, then at most one line per `every` seconds with how much
failed since the last one, and a last one if anything failed after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

REPORT_EVERY = 60.0  # seconds between the lines of an outage that goes on
# seconds of successes without a failure before an outage counts as over: on a full disk a
# small write fits now and then while the rest still fail, and that is no recovery
SETTLE = 5.0


class RepeatedFailure:
    """`failed` at each failed attempt, `succeeded` at each good one. `what` starts every line
    (`storage write failed`), `unit` names the count (`samples`)."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        unit: str,
        *,
        every: float = REPORT_EVERY,
        settle: float = SETTLE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._what = what
        self._unit = unit
        self._every = every
        self._settle = settle
        self._clock = clock
        self._error: str | None = None  # the outage's latest error; None while all is well
        self._reported_at = 0.0
        self._failed_at = 0.0
        self._unreported = 0  # failed since the last line

    def failed(self, count: int, error: str) -> None:
        now = self._clock()
        self._failed_at = now
        self._unreported += count
        if error == self._error and now - self._reported_at < self._every:
            return
        again = " (still failing)" if error == self._error else ""
        self._log.error(
            "%s%s %s=%d error=%s", self._what, again, self._unit, self._unreported, error
        )
        self._error, self._reported_at, self._unreported = error, now, 0

    def succeeded(self) -> None:
        if self._error is None or self._clock() - self._failed_at < self._settle:
            return
        if self._unreported:
            self._log.warning(
                "%s %s=%d more since the last report, then recovered",
                self._what,
                self._unit,
                self._unreported,
            )
        self._error, self._unreported = None, 0
