"""A store's health as every service sees it: whether its writes and reads fail, why, and
since when.

Adapters classify their own errors into a `Cause` (SQLite's `database or disk is full`,
InfluxDB's 401) and keep a `HealthTracker`; `/healthz`, the hosts answer, `fleetpulse status`
and the alert engine read `StoreHealth`. The alert engine uses the write outages to tell data
that is missing because the store failed from data a target did not send.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Cause(StrEnum):
    """Why a store failed, in words an operator can act on (a `cause` label and JSON field)."""

    DISK_FULL = "disk_full"
    READ_ONLY = "read_only"
    PERMISSION_DENIED = "permission_denied"
    LOCKED = "locked"
    CORRUPT = "corrupt"
    UNAUTHORIZED = "unauthorized"  # InfluxDB 401: a wrong or rotated token
    FORBIDDEN = "forbidden"  # InfluxDB 403: the token may not write the bucket
    BUCKET_NOT_FOUND = "bucket_not_found"  # InfluxDB 404
    TOO_LARGE = "too_large"  # InfluxDB 413
    RATE_LIMITED = "rate_limited"  # InfluxDB 429
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"  # no answer in time: a stalled disk, a lock held too long
    OTHER = "other"


_BY_ERRNO = {
    errno.ENOSPC: Cause.DISK_FULL,
    errno.EDQUOT: Cause.DISK_FULL,
    errno.EROFS: Cause.READ_ONLY,
    errno.EACCES: Cause.PERMISSION_DENIED,
    errno.EPERM: Cause.PERMISSION_DENIED,
}


def cause_of_errno(number: int | None) -> Cause:
    """The cause a failed file operation's errno names (`OSError.errno`); OTHER if none fits."""
    return _BY_ERRNO.get(number or 0, Cause.OTHER)


@dataclass(frozen=True, slots=True)
class Failure:
    """An ongoing outage of a store's writes or reads."""

    cause: Cause
    error: str  # the store's own words, with what to do next
    since_ms: int  # its first failure
    last_ms: int  # its latest failure

    def as_json(self) -> dict[str, Any]:
        return {
            "cause": str(self.cause),
            "error": self.error,
            "since_ms": self.since_ms,
            "last_ms": self.last_ms,
        }


@dataclass(frozen=True, slots=True)
class StoreHealth:
    write: Failure | None = None  # writes fail right now
    read: Failure | None = None  # reads fail right now
    # (start, end) of the latest write outage that is over, in ms
    last_write_outage: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        return self.write is None and self.read is None

    def writes_missing(self, start_ms: int, end_ms: int) -> bool:
        """Whether data in [start, end] may be missing because writes failed then."""
        if self.write is not None and self.write.since_ms <= end_ms:
            return True
        past = self.last_write_outage
        return past is not None and past[0] <= end_ms and past[1] >= start_ms

    def as_json(self) -> dict[str, Any]:
        """`{"status": "ok"}` or `"degraded"` with the failing side(s), as /healthz shows it."""
        out: dict[str, Any] = {"status": "ok" if self.ok else "degraded"}
        if self.write is not None:
            out["write"] = self.write.as_json()
        if self.read is not None:
            out["read"] = self.read.as_json()
        return out


class HealthTracker:
    """The mutable side an adapter keeps: told of each write's and read's outcome.

    With `settle_ms`, a write outage ends only at a success that many ms after its latest
    failure: on a full disk a small write can fit in a freed page while the rest still fail,
    and that is no recovery."""

    def __init__(self, settle_ms: int = 0) -> None:
        self.settle_ms = settle_ms
        self._write: Failure | None = None
        self._read: Failure | None = None
        self._last_write_outage: tuple[int, int] | None = None

    def health(self) -> StoreHealth:
        return StoreHealth(self._write, self._read, self._last_write_outage)

    def write_failed(self, cause: Cause, error: str, now_ms: int) -> bool:
        """Record a failed write; True when it starts an outage or changes its cause (log it)."""
        self._write, new = _failed(self._write, cause, error, now_ms)
        return new

    def write_ok(self, now_ms: int) -> Failure | None:
        """Record a write that succeeded; returns the outage it ends, if any (log it)."""
        if self._write is not None and now_ms - self._write.last_ms < self.settle_ms:
            return None
        ended, self._write = self._write, None
        if ended is not None:
            self._last_write_outage = (ended.since_ms, now_ms)
        return ended

    def read_failed(self, cause: Cause, error: str, now_ms: int) -> bool:
        self._read, new = _failed(self._read, cause, error, now_ms)
        return new

    def read_ok(self) -> Failure | None:
        ended, self._read = self._read, None
        return ended


def _failed(current: Failure | None, cause: Cause, error: str, now_ms: int) -> tuple[Failure, bool]:
    if current is None:
        return Failure(cause, error, now_ms, now_ms), True
    return Failure(cause, error, current.since_ms, now_ms), cause != current.cause
