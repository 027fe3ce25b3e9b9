"""Pulling an exporter's own log lines with every scrape and storing them as `agent_logs`.

Each target has a cursor (the exporter run's instance id and the last sequence stored). It is
kept in a small JSON file under the data dir, written atomically after the lines are stored,
so a collector restart resumes where it stopped and an exporter restart (new instance) starts
over from its first line. Lines logged while the collector was down wait in the exporter's
ring buffer.

Only targets whose /metrics answer carries the FleetPulse-Exporter header are asked (the
Collector checks): node_exporter, cAdvisor or an app never see a /logs request. A target that
sends the header but whose /logs is not ours (a 404, an HTML page, other JSON: a proxy in
front, a path rewritten) is asked again only an hour later, and logged once per hour.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from collector.targets import Target
from fleetpulse.core.durations import format_duration
from fleetpulse.core.failurelog import RepeatedFailure
from fleetpulse.core.headers import INSTANCE_HEADER
from fleetpulse.core.samples import make_labels
from fleetpulse.core.storage import AGENT_LOGS, Event, Storage, StorageError

log = logging.getLogger(__name__)
PAGE = 1000
MAX_PAGES = 100
NOT_OURS_BACKOFF = 3600.0  # seconds before a /logs that is not ours is asked again
LOG_CONTENT_TYPE = "application/x-ndjson"


class NotOurLogs(Exception):
    """A /logs answer that is not a FleetPulse exporter's; the message says what it was."""


@dataclass(frozen=True, slots=True)
class LogCursor:
    instance: str = ""
    seq: int = 0


def logs_url(metrics_url: str) -> str:
    """The exporter's /logs beside its /metrics (same scheme, host, port and path prefix)."""
    parts = urlsplit(metrics_url)
    path = parts.path.rsplit("/", 1)[0] + "/logs"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class LogCursors:
    """Per-target cursors, persisted to `path` with an atomic rename."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cursors: dict[str, LogCursor] = {}
        try:
            raw = json.loads(path.read_text())
            self._cursors = {key: LogCursor(v["instance"], int(v["seq"])) for key, v in raw.items()}
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("log cursors unreadable, starting over path=%s error=%s", path, exc)

    def get(self, key: str) -> LogCursor:
        return self._cursors.get(key, LogCursor())

    def set(self, key: str, cursor: LogCursor) -> None:
        self._cursors[key] = cursor
        payload = {k: {"instance": c.instance, "seq": c.seq} for k, c in self._cursors.items()}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, self.path)


def line_event(target: Target, line: dict[str, object], instance: str) -> Event:
    labels = dict(target.labels)
    labels["level"] = str(line.get("level", "info"))
    labels["logger"] = str(line.get("logger", ""))
    # times are unique within one exporter run; the run id keeps two runs' lines apart
    labels["instance"] = instance
    return Event(
        int(str(line["ts"])),
        make_labels(labels),
        (("message", str(line.get("message", ""))), ("seq", float(str(line["seq"])))),
    )


async def fetch_lines(
    session: aiohttp.ClientSession, target: Target, after: int
) -> tuple[str, list[dict[str, object]]]:
    async with session.get(
        logs_url(target.url),
        params={"after": str(after), "limit": str(PAGE)},
        headers=dict(target.headers),
        timeout=aiohttp.ClientTimeout(total=target.timeout),
        ssl=target.ssl_context(),
        allow_redirects=False,
    ) as response:
        if response.status == 404:
            raise NotOurLogs("HTTP 404")
        response.raise_for_status()
        instance = response.headers.get(INSTANCE_HEADER, "")
        content_type = response.headers.get("Content-Type", "")
        if not instance or not content_type.startswith(LOG_CONTENT_TYPE):
            raise NotOurLogs(f"Content-Type {content_type or 'none'} without {INSTANCE_HEADER}")
        # a page is at most PAGE lines, but a line may carry a long traceback: the scrape's
        # body limit bounds what one pull can hold in memory
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(256 * 1024):
            size += len(chunk)
            if size > target.body_size_limit:
                raise ValueError(
                    f"/logs page larger than the limit of {target.body_size_limit} bytes"
                )
            chunks.append(chunk)
        text = b"".join(chunks).decode("utf-8", "replace")
    try:
        lines = [json.loads(row) for row in text.splitlines() if row.strip()]
    except ValueError:
        raise NotOurLogs("a line that is not JSON") from None
    if not all(isinstance(line, dict) and "seq" in line and "ts" in line for line in lines):
        raise NotOurLogs("a line without seq and ts")
    return instance, lines


class PullHealth:
    """How each target's /logs answered lately, so that a failing one does not fill the log.

    A /logs that is not ours makes the target wait `backoff` seconds, logged once per wait.
    Other failures (refused, timeout, HTTP 5xx) are tried again after the next good scrape,
    logged when they start or change and at debug level while they repeat.
    """

    def __init__(
        self, backoff: float = NOT_OURS_BACKOFF, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.backoff = backoff
        self.clock = clock
        self._retry_at: dict[str, float] = {}
        self._failing: dict[str, str] = {}  # target key -> the reason of its last failure
        # one store for every target: its outage is one line a minute, not one per pull
        self.not_stored = RepeatedFailure(
            log, "log lines not stored, fetched again once the store writes", "pulls"
        )
        self.cursor_not_saved = RepeatedFailure(log, "log cursor not saved", "pulls")

    def due(self, target: Target) -> bool:
        return self.clock() >= self._retry_at.get(target.key, 0.0)

    def not_ours(self, target: Target, reason: str) -> None:
        self._retry_at[target.key] = self.clock() + self.backoff
        self._failing.pop(target.key, None)
        log.info(
            "log pull paused, /logs is not a FleetPulse exporter's host=%s url=%s reason=%s "
            "retry_in=%s",
            target.host,
            logs_url(target.url),
            reason,
            format_duration(self.backoff),
        )

    def failed(self, target: Target, reason: str) -> None:
        again = self._failing.get(target.key) == reason
        self._failing[target.key] = reason
        log.log(
            logging.DEBUG if again else logging.INFO,
            "log pull failed host=%s url=%s error=%s",
            target.host,
            logs_url(target.url),
            reason,
        )

    def succeeded(self, target: Target) -> None:
        self._retry_at.pop(target.key, None)
        if self._failing.pop(target.key, None) is not None:
            log.info("log pull recovered host=%s url=%s", target.host, logs_url(target.url))


async def pull_logs(
    session: aiohttp.ClientSession,
    target: Target,
    storage: Storage,
    cursors: LogCursors,
    health: PullHealth | None = None,
) -> int:
    """Store the target's new lines; returns how many. Failures are logged through `health`
    (the Collector keeps one across pulls; a lone pull gets its own), never raised."""
    health = health or PullHealth()
    cursor = cursors.get(target.key)
    stored = 0
    try:
        instance, lines = await fetch_lines(session, target, cursor.seq)
        if cursor.instance and instance and instance != cursor.instance:
            # the exporter restarted: its sequence began again at 1
            instance, lines = await fetch_lines(session, target, 0)
        for _page in range(MAX_PAGES):  # drain a backlog page by page, but never forever
            if not lines:
                break
            events = [line_event(target, line, instance) for line in lines]
            await storage.write_events(AGENT_LOGS, events)
            stored += len(lines)
            last = int(str(lines[-1]["seq"]))
            await asyncio.to_thread(cursors.set, target.key, LogCursor(instance, last))
            if len(lines) < PAGE:
                break
            instance, lines = await fetch_lines(session, target, last)
    except NotOurLogs as exc:
        health.not_ours(target, str(exc))
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
        health.failed(target, str(exc) or type(exc).__name__)
    except StorageError as exc:
        # the cursor did not move, so these lines are fetched again next time
        health.not_stored.failed(1, str(exc))
    except OSError as exc:
        health.cursor_not_saved.failed(1, str(exc))
    else:
        health.succeeded(target)
        if stored:
            health.not_stored.succeeded()
            health.cursor_not_saved.succeeded()
    return stored
