"""Clock helpers and the time formats users type: RFC 3339, relative (`-24h`), `now`."""

from __future__ import annotations

import argparse
import math
import time
from datetime import UTC, datetime

from fleetpulse.core.durations import parse_duration


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# No store holds a time past year ~33,000; beyond it floats lose precision and SQLite's
# INTEGER overflows, so such times are refused as bad input.
MAX_ABS_MS = 10**15


def parse_time(text: str, now: int | None = None) -> int:
    """Milliseconds for RFC 3339, `now`, a relative `-24h`, or unix seconds; ValueError if not."""
    ms = _parse_time(text.strip(), now_ms() if now is None else now)
    if not -MAX_ABS_MS < ms < MAX_ABS_MS:
        raise ValueError(f"time out of range: {text.strip()[:40]!r}")
    return ms


def _parse_time(text: str, reference: int) -> int:
    if text in ("", "now"):
        return reference
    if text.startswith("-"):
        return reference - int(parse_duration(text[1:]) * 1000)
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or abs(seconds) * 1000 >= MAX_ABS_MS:
            raise ValueError(f"time out of range: {text[:40]!r}")
        return int(seconds * 1000)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"expected RFC 3339 (2026-11-27T10:00:00Z), a relative time like -24h, or now; "
            f"got {text!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def format_time(ms: int, *, millis: bool = False) -> str:
    """RFC 3339 in UTC with a Z, to the second (or the millisecond, when it has any)."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    if millis and ms % 1000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def time_option(text: str) -> str:
    """An argparse type for --since/--until, returned in the API's form: `24h` and `-24h` mean
    24 hours ago; RFC 3339 and `now` pass through. Unlike the API, a bare number is refused
    rather than read as Unix seconds: `--since 10` means ten of some unit ago far more often
    than 1970-01-01T00:00:10Z."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            raise argparse.ArgumentTypeError(
                f"got the bare number {text}; add a unit, e.g. {text.lstrip('+-')}m for "
                "minutes ago, or give an RFC 3339 time like 2026-11-27T10:00:00Z"
            )
    ago = text.removeprefix("-")
    try:
        parse_duration(ago)
    except ValueError:
        pass
    else:
        return f"-{ago}"
    try:
        parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected a duration ago like 24h or 90m, an RFC 3339 time like "
            f"2026-11-27T10:00:00Z, or now; got {text!r}"
        ) from None
    return text
