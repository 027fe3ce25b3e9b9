"""Scrape loops: one asyncio task per target, on a stable slot, writing every scrape's outcome.

Every scrape, good or bad, yields `up`, `scrape_duration_seconds` and
`scrape_samples_scraped`. A failed scrape logs one line with the reason and never delays
the other targets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from collector.parse import ParseError, parse_exposition
from collector.targets import Target
from fleetpulse.samples import Labels, Sample

log = logging.getLogger(__name__)

ACCEPT = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
DEFAULT_BODY_LIMIT = 64 * 1024 * 1024
Sink = Callable[[list[Sample]], Awaitable[None]]


class ScrapeFailed(Exception):
    """A scrape that produced no samples; the message is the reason users read."""


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    samples: list[Sample]  # the target's samples plus the three scrape series
    up: bool
    duration: float
    reason: str = ""


def target_labels(target_base: Labels, labels: Labels) -> Labels:
    """Target labels win; a clashing exposed label is kept as `exported_<name>`, as Prometheus."""
    if not labels:
        return target_base
    merged = dict(target_base)
    for key, value in labels:
        merged[f"exported_{key}" if key in merged else key] = value
    return tuple(sorted(merged.items()))


async def fetch(
    session: aiohttp.ClientSession, target: Target, body_limit: int
) -> tuple[bytes, bool]:
    """The body and whether it is OpenMetrics; raises ScrapeFailed with a reason."""
    try:
        async with session.get(
            target.url,
            headers={"Accept": ACCEPT, **dict(target.headers)},
            timeout=aiohttp.ClientTimeout(total=target.timeout),
            ssl=target.ssl_context(),
            allow_redirects=False,
        ) as response:
            if response.status != 200:
                raise ScrapeFailed(f"HTTP {response.status} {response.reason or ''}".strip())
            chunks = []
            size = 0
            async for chunk in response.content.iter_chunked(256 * 1024):
                size += len(chunk)
                if size > body_limit:
                    raise ScrapeFailed(f"body larger than the limit of {body_limit} bytes")
                chunks.append(chunk)
            openmetrics = "application/openmetrics-text" in response.headers.get("Content-Type", "")
            return b"".join(chunks), openmetrics
    except TimeoutError:
        raise ScrapeFailed(f"timeout after {target.timeout:g}s") from None
    except aiohttp.ClientConnectorError as exc:
        raise ScrapeFailed(f"connection failed: {exc.os_error.strerror or exc}") from None
    except aiohttp.ClientError as exc:
        raise ScrapeFailed(f"{type(exc).__name__}: {exc}") from None


async def scrape_target(
    session: aiohttp.ClientSession, target: Target, *, body_limit: int = DEFAULT_BODY_LIMIT
) -> ScrapeResult:
    started = time.monotonic()
    ts = time.time_ns() // 1_000_000
    samples: list[Sample] = []
    reason = ""
    try:
        body, openmetrics = await fetch(session, target, body_limit)
        parsed = parse_exposition(body, openmetrics=openmetrics)
        base = target.labels
        samples = [
            Sample(
                p.name,
                target_labels(base, p.labels),
                p.value,
                p.timestamp_ms if p.timestamp_ms is not None else ts,
            )
            for p in parsed
        ]
    except ScrapeFailed as exc:
        reason = str(exc)
    except ParseError as exc:
        reason = str(exc)
    duration = time.monotonic() - started
    up = not reason
    scraped = len(samples)
    samples += [
        Sample("up", target.labels, 1.0 if up else 0.0, ts),
        Sample("scrape_duration_seconds", target.labels, duration, ts),
        Sample("scrape_samples_scraped", target.labels, float(scraped), ts),
    ]
    return ScrapeResult(samples, up, duration, reason)


class ScrapeLoop:
    """Scrapes one target forever on slots `offset + k * interval` of the wall clock."""

    def __init__(
        self,
        target: Target,
        session: aiohttp.ClientSession,
        sink: Sink,
        on_result: Callable[[Target, ScrapeResult], None] | None = None,
    ) -> None:
        self.target = target
        self.session = session
        self.sink = sink
        self.on_result = on_result
        self._was_up: bool | None = None

    def next_slot(self, now: float) -> float:
        interval = self.target.interval
        offset = self.target.offset()
        return ((now - offset) // interval + 1) * interval + offset

    async def run(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, self.next_slot(time.time()) - time.time()))
            await self.scrape_once()

    async def scrape_once(self) -> ScrapeResult:
        result = await scrape_target(self.session, self.target)
        target = self.target
        if not result.up:
            log.warning(
                "scrape failed host=%s job=%s url=%s reason=%s",
                target.host,
                target.job,
                target.url,
                result.reason,
            )
        elif self._was_up is False:
            log.info("scrape recovered host=%s job=%s url=%s", target.host, target.job, target.url)
        self._was_up = result.up
        if self.on_result is not None:
            self.on_result(target, result)
        await self.sink(result.samples)
        return result
