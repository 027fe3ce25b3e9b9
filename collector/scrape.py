"""Scrape loops: one asyncio task per target, on a stable slot, writing every scrape's outcome.

Every scrape, good or bad, yields `up`, `scrape_duration_seconds` and
`scrape_samples_scraped`. A failed scrape never delays the other targets; a target that starts
failing (or fails for a new reason) logs one warning with the reason, its repeats go to the
debug log, and its recovery logs one line.

A hostile target cannot hurt the others: a body is cut at the target's size limit, every body
in flight draws on one byte budget shared by all scrape loops, and a body with too many
samples, too many labels on a sample or too long a label value fails the whole scrape (as
Prometheus does) instead of reaching the store, where one monstrous series could get a whole
batch, other targets' samples included, refused.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

import aiohttp

from collector.parse import ParsedSample, ParseError, parse_exposition
from collector.targets import Target
from fleetpulse.core.headers import EXPORTER_HEADER
from fleetpulse.core.samples import Labels, Sample

log = logging.getLogger(__name__)

ACCEPT = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
Sink = Callable[[list[Sample]], Awaitable[None]]
_LABELS = itemgetter(1)  # ParsedSample.labels
# Merged label sets kept per target; a target exposing more distinct series than this over
# time (churning labels) starts its cache afresh rather than growing it.
MERGED_LABELS_LIMIT = 100_000
_VALUE = itemgetter(1)  # the value of a (name, value) label pair


class ScrapeFailed(Exception):
    """A scrape that produced no samples; the message is the reason users read."""


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    samples: list[Sample]  # the target's samples plus the three scrape series
    up: bool
    duration: float
    reason: str = ""
    exporter: str = ""  # the version a FleetPulse exporter names in its header; else empty


class BodyBudget:
    """Bytes of scraped bodies held in memory at once, shared by every scrape loop.

    The per-target size limit bounds one scrape; this bounds them all together, so N endless
    targets scraped at the same moment cannot take N times the limit. A scrape that cannot get
    its next chunk fails at once (up = 0) rather than waiting: it would only hold its slot.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def lease(self) -> BodyLease:
        return BodyLease(self)


class BodyLease:
    """One scrape's share of a BodyBudget; release() returns all of it."""

    __slots__ = ("budget", "held")

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.held = 0

    def take(self, size: int) -> None:
        budget = self.budget
        if budget.used + size > budget.limit:
            raise ScrapeFailed(f"scrape memory budget of {budget.limit} bytes exhausted")
        budget.used += size
        self.held += size

    def release(self) -> None:
        self.budget.used -= self.held
        self.held = 0


def target_labels(target_base: Labels, labels: Labels) -> Labels:
    """Target labels win; a clashing exposed label is kept as `exported_<name>`, as Prometheus."""
    if not labels:
        return target_base
    base_names = {key for key, _ in target_base}
    if not any(key in base_names for key, _ in labels):
        # the usual case: the pair tuples themselves are reused (the parser shares them across
        # targets), so a target's 500 merged sets hold 500 tuples, not 500 x 7 pairs besides
        return tuple(sorted((*target_base, *labels)))
    merged = dict(target_base)
    for key, value in labels:
        merged[f"exported_{key}" if key in merged else key] = value
    return tuple(sorted(merged.items()))


class LabelMerger:
    """A target's merged label sets, kept across scrapes: the same series come every time, so
    each sample reuses one shared tuple instead of building and storing its own."""

    def __init__(self, base: Labels, limit: int = MERGED_LABELS_LIMIT) -> None:
        self.base = base
        self.limit = limit
        self._merged: dict[Labels, Labels] = {}

    def merge(self, labels: Labels) -> Labels:
        merged = self._merged.get(labels)
        if merged is None:
            if len(self._merged) >= self.limit:
                self._merged.clear()  # a target churning series must not grow without bound
            merged = self._merged[labels] = target_labels(self.base, labels)
        return merged


@dataclass(frozen=True, slots=True)
class Fetched:
    body: bytes
    openmetrics: bool
    exporter: str  # the version a FleetPulse exporter names in its header; else empty
    clock_skew: float | None  # seconds the target's clock is ahead of ours; None: no Date


def clock_skew(date: str | None, sent: float, received: float) -> float | None:
    """How far the target's clock is ahead of ours, from its HTTP `Date` header.

    Every HTTP server sends one (node_exporter, our exporter, any app), so this needs nothing
    of the target. `Date` has whole seconds: its middle is compared with the middle of the
    round trip, so the error is at most half a second plus half the round trip.
    """
    if not date:
        return None
    try:
        stamp = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return stamp + 0.5 - (sent + received) / 2


async def fetch(
    session: aiohttp.ClientSession, target: Target, body_limit: int, lease: BodyLease | None = None
) -> Fetched:
    """The body and what its answer says about the target; raises ScrapeFailed with a reason."""
    sent = time.time()
    try:
        async with session.get(
            target.url,
            headers={"Accept": ACCEPT, **dict(target.headers)},
            timeout=aiohttp.ClientTimeout(total=target.timeout),
            ssl=target.ssl_context(),
            allow_redirects=False,
        ) as response:
            received = time.time()
            if response.status != 200:
                raise ScrapeFailed(f"HTTP {response.status} {response.reason or ''}".strip())
            chunks = []
            size = 0
            async for chunk in response.content.iter_chunked(256 * 1024):
                size += len(chunk)
                if size > body_limit:
                    raise ScrapeFailed(f"body larger than the limit of {body_limit} bytes")
                if lease is not None:
                    lease.take(len(chunk))
                chunks.append(chunk)
            headers = response.headers
            return Fetched(
                b"".join(chunks),
                "application/openmetrics-text" in headers.get("Content-Type", ""),
                headers.get(EXPORTER_HEADER, ""),
                clock_skew(headers.get("Date"), sent, received),
            )
    except TimeoutError:
        raise ScrapeFailed(f"timeout after {target.timeout:g}s") from None
    except aiohttp.ClientConnectorError as exc:
        # asyncio's strerror is "Connect call failed ('10.0.0.5', 9184)": the errno says why
        errno = exc.os_error.errno
        raise ScrapeFailed(f"connection failed: {os.strerror(errno) if errno else exc}") from None
    except aiohttp.ClientError as exc:
        raise ScrapeFailed(f"{type(exc).__name__}: {exc}") from None


def check_limits(parsed: list[ParsedSample], target: Target, body: bytes) -> None:
    """Raise ScrapeFailed when the body breaks one of the target's limits.

    The parser does not look (it must stay fast for everyone); this runs once per scrape on its
    result, in C-level iterator chains (~0.1-0.3 us per sample, a tenth of parsing it or less);
    only a failure walks the samples in Python to name the line.
    Labels are counted as exposed, before the target's own are added: the limit is about what
    an exporter sends, and a target's configured labels are the operator's choice. A value is
    measured in characters, as decoded.
    """
    if 0 < target.sample_limit < len(parsed):
        raise ScrapeFailed(
            f"body has {len(parsed)} samples; the limit is {target.sample_limit} "
            "(scrape.sample_limit)"
        )
    label_limit = target.label_limit
    if max(map(len, map(_LABELS, parsed)), default=0) > label_limit:
        index, sample = next((i, p) for i, p in enumerate(parsed) if len(p.labels) > label_limit)
        raise ScrapeFailed(
            f"sample at line {_line_of(body, index)} has {len(sample.labels)} labels; "
            f"the limit is {label_limit} (scrape.label_limit)"
        )
    length_limit = target.label_value_length_limit
    # a value longer than the limit needs a body longer than it: small bodies skip the look
    if len(body) <= length_limit:
        return
    values = map(_VALUE, chain.from_iterable(map(_LABELS, parsed)))
    if max(map(len, values), default=0) > length_limit:
        index, name, value = next(
            (i, name, value)
            for i, p in enumerate(parsed)
            for name, value in p.labels
            if len(value) > length_limit
        )
        raise ScrapeFailed(
            f"sample at line {_line_of(body, index)} has a value of {len(value)} characters "
            f"for label {name!r}; the limit is {length_limit} (scrape.label_value_length_limit)"
        )


def _line_of(body: bytes, index: int) -> int:
    """The 1-based line of the index-th sample: the parser skips blank and comment lines only,
    so it is the index-th other line. Only called on the way to a failure."""
    count = -1
    for lineno, line in enumerate(body.split(b"\n"), 1):
        stripped = line.lstrip(b" \t")
        if stripped and not stripped.startswith(b"#"):
            count += 1
            if count == index:
                return lineno
    return 0  # not reached for a body the parser accepted


async def scrape_target(
    session: aiohttp.ClientSession,
    target: Target,
    *,
    body_limit: int | None = None,
    budget: BodyBudget | None = None,
    merger: LabelMerger | None = None,
) -> ScrapeResult:
    """Scrape once. `body_limit` overrides the target's; `budget` is shared by all loops;
    `merger` carries the target's label sets over from its previous scrapes."""
    started = time.monotonic()
    ts = time.time_ns() // 1_000_000
    samples: list[Sample] = []
    reason = ""
    exporter = ""
    skew: float | None = None
    lease = budget.lease() if budget is not None else None
    try:
        limit = body_limit if body_limit is not None else target.body_size_limit
        fetched = await fetch(session, target, limit, lease)
        exporter, skew = fetched.exporter, fetched.clock_skew
        parsed = parse_exposition(fetched.body, openmetrics=fetched.openmetrics)
        check_limits(parsed, target, fetched.body)
        del fetched
        merge = (merger or LabelMerger(target.labels)).merge
        # tuple.__new__ skips NamedTuple's Python-level __new__ (a third of building a Sample)
        new_sample = tuple.__new__
        samples = [
            new_sample(Sample, (name, merge(labels), value, ts if stamp is None else stamp))
            for name, labels, value, stamp in parsed
        ]
    except ScrapeFailed as exc:
        reason = str(exc)
    except ParseError as exc:
        reason = str(exc)
    finally:
        # held through parsing: the body, its decoded text and the parsed samples are all
        # alive until here, so releasing after the read would undercount
        if lease is not None:
            lease.release()
    duration = time.monotonic() - started
    up = not reason
    scraped = len(samples)
    samples += [
        Sample("up", target.labels, 1.0 if up else 0.0, ts),
        Sample("scrape_duration_seconds", target.labels, duration, ts),
        Sample("scrape_samples_scraped", target.labels, float(scraped), ts),
    ]
    if skew is not None and up:  # a failed scrape keeps only the three samples above
        samples.append(Sample("scrape_clock_skew_seconds", target.labels, skew, ts))
    return ScrapeResult(samples, up, duration, reason, exporter)


class ScrapeLoop:
    """Scrapes one target forever on slots `offset + k * interval` of the wall clock."""

    def __init__(
        self,
        target: Target,
        session: aiohttp.ClientSession,
        sink: Sink,
        on_result: Callable[[Target, ScrapeResult], None] | None = None,
        budget: BodyBudget | None = None,
    ) -> None:
        self.target = target
        self.session = session
        self.sink = sink
        self.on_result = on_result
        self.budget = budget  # shared by all loops; None: only the per-target body limit
        self.merger = LabelMerger(target.labels)
        self._failures = 0  # in a row, up to the last scrape
        self._last_reason = ""

    def next_slot(self, now: float) -> float:
        interval = self.target.interval
        offset = self.target.offset()
        return ((now - offset) // interval + 1) * interval + offset

    async def run(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, self.next_slot(time.time()) - time.time()))
            await self.scrape_once()

    async def scrape_once(self) -> ScrapeResult:
        result = await scrape_target(
            self.session, self.target, budget=self.budget, merger=self.merger
        )
        target = self.target
        if not result.up:
            # a dead target fails every interval: a warning when it starts failing or fails
            # differently, the repeats only at debug level
            again = self._failures > 0 and result.reason == self._last_reason
            log.log(
                logging.DEBUG if again else logging.WARNING,
                "scrape failed host=%s job=%s url=%s reason=%s",
                target.host,
                target.job,
                target.url,
                result.reason,
            )
            self._failures += 1
            self._last_reason = result.reason
        elif self._failures:
            log.info(
                "target up again after %d failures host=%s job=%s url=%s",
                self._failures,
                target.host,
                target.job,
                target.url,
            )
            self._failures = 0
            self._last_reason = ""
        if self.on_result is not None:
            self.on_result(target, result)
        await self.sink(result.samples)
        return result
