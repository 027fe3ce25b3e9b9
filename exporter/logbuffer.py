"""The exporter's own log lines, kept in a bounded ring buffer for `/logs` and `/logs/stream`.

Every record gets a sequence number and a millisecond time that is unique per exporter run, so
the collector can resume after the last line it stored and store each line exactly once. The
`instance` id changes on every start, which tells a collector the sequence restarted.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
# Credentials that might slip into a message (a logged header or URL) are masked anyway.
SECRET_PATTERNS = (
    re.compile(r"(?i)(authorization:?\s*(?:bearer|basic)\s+)\S+"),
    re.compile(r"(?i)((?:token|password|passwd|secret|api_key)[=:]\s*)[^\s&,;]+"),
    re.compile(r"(?i)(://[^/\s:@]+:)[^@\s/]+(@)"),
)


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int
    ts_ms: int
    level: str
    logger: str
    message: str

    def as_dict(self) -> dict[str, str | int]:
        return {
            "seq": self.seq,
            "ts": self.ts_ms,
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
        }


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(
            lambda m: m.group(1) + "***" + (m.group(2) if m.lastindex == 2 else ""), text
        )
    return text


def level_at_least(level: str, minimum: str | None) -> bool:
    return minimum is None or LEVELS.get(level, 0) >= LEVELS.get(minimum, 0)


def line_matches(line: LogLine, level: str | None, query: str | None) -> bool:
    """At least `level`, and containing `query` (case-insensitive) in message or logger."""
    if not level_at_least(line.level, level):
        return False
    if not query:
        return True
    needle = query.lower()
    return needle in line.message.lower() or needle in line.logger.lower()


class LogBuffer(logging.Handler):
    """A logging handler that keeps the last `capacity` records, safe from any thread."""

    def __init__(self, capacity: int = 10_000, secrets: Iterable[str] = ()) -> None:
        super().__init__(level=logging.INFO)
        self.instance = uuid.uuid4().hex[:12]
        self.secrets = tuple(s for s in secrets if s)
        self._lines: deque[LogLine] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._seq = 0
        self._last_ts = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = redact(record.getMessage(), self.secrets)
        except (TypeError, ValueError):  # a bad format string in someone's log call
            message = redact(str(record.msg), self.secrets)
        with self._lock:
            self._seq += 1
            # unique, increasing times per run: two lines in one millisecond stay two lines
            ts = max(int(record.created * 1000), self._last_ts + 1)
            self._last_ts = ts
            self._lines.append(
                LogLine(self._seq, ts, record.levelname.lower(), record.name, message)
            )
            waiters = list(self._waiters)
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def since(
        self, after: int = 0, level: str | None = None, query: str | None = None, limit: int = 1000
    ) -> list[LogLine]:
        """Lines with seq > after, oldest first, filtered by minimum level and substring."""
        out = []
        with self._lock:
            lines = list(self._lines)
        for line in lines:
            if line.seq <= after or not line_matches(line, level, query):
                continue
            out.append(line)
            if len(out) >= limit:
                break
        return out

    async def wait(self, after: int) -> None:
        """Return once a line with seq > after exists; callers bound it with a timeout."""
        if self._seq > after:
            return
        event = asyncio.Event()
        key = (asyncio.get_running_loop(), event)
        self._waiters.add(key)
        try:
            if self._seq <= after:
                await event.wait()
        finally:
            self._waiters.discard(key)


def install(buffer: LogBuffer, logger: logging.Logger | None = None) -> None:
    """Attach the buffer (once) to `logger`, the root logger by default, so the records of it
    and of every logger below it land in the buffer."""
    target = logger or logging.getLogger()
    if buffer not in target.handlers:
        target.addHandler(buffer)
