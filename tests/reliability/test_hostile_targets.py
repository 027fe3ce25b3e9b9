"""Hostile targets: bodies that never end, drip one byte at a time, carry 100,000 labels, hide
newlines and quotes in a label value, or are not UTF-8. Each is scraped by the real scrape
code over loopback; each ends with `up = 0` and a reason (the legal label value with `up = 1`
and the value intact), and the collector's memory stays bounded while it happens.

The scrapes run in this process, so "the collector's memory" is this process's RSS.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from collector.scrape import ScrapeResult, scrape_target
from collector.targets import Target
from fleetpulse.core.samples import make_labels
from tests.reliability.memory import rss_mb
from tests.support.servers import Handler, endless_body, serve, static_exposition

TIMEOUT = 2.0  # the target's scrape timeout, seconds
# Growth allowed across the repeated hostile scrapes: the endless body may hold up to the
# 64 MiB body limit once, but it must not grow with every scrape.
MEMORY_BOUND_MB = 200.0
REPEATS = 3


def slow_drip(delay: float = 0.1) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        try:
            for byte in b"# drip drip drip\n" * 1000:
                await response.write(bytes([byte]))
                await asyncio.sleep(delay)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    return handler


def raw_body(body: bytes) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})

    return handler


MANY_LABELS = ("many_labels{" + ",".join(f'l{i}="v"' for i in range(100_000)) + "} 1\n").encode()
TRICKY_VALUE = 'line one\nline "two" \\ end'
TRICKY_BODY = b'tricky{note="line one\\nline \\"two\\" \\\\ end"} 7\n'
INVALID_UTF8 = b'bad{note="caf\xe9"} 1\n'


@pytest.fixture
async def base() -> AsyncIterator[str]:
    routes = {
        "/endless": endless_body(),
        "/drip": slow_drip(),
        "/many-labels": raw_body(MANY_LABELS),
        "/tricky": raw_body(TRICKY_BODY),
        "/invalid-utf8": raw_body(INVALID_UTF8),
        "/good": static_exposition("good_metric 1\n"),
    }
    async with serve(routes) as url:
        yield url


def target(url: str) -> Target:
    return Target(
        url=url,
        host="hostile",
        job="reliability",
        labels=make_labels({"host": "hostile", "job": "reliability"}),
        interval=10.0,
        timeout=TIMEOUT,
    )


async def scrape(base: str, path: str) -> ScrapeResult:
    async with aiohttp.ClientSession() as session:
        return await scrape_target(session, target(base + path))


def up_of(result: ScrapeResult) -> float:
    return next(s.value for s in result.samples if s.name == "up")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/endless", "body larger than the limit"),
        ("/drip", "timeout after 2s"),
        ("/invalid-utf8", "invalid UTF-8"),
    ],
)
async def test_hostile_body_gives_up_zero_with_a_reason(base: str, path: str, reason: str) -> None:
    result = await scrape(base, path)
    assert not result.up
    assert up_of(result) == 0.0
    # an endless body on a slower machine may hit the timeout before the size limit
    assert reason in result.reason or (path == "/endless" and "timeout" in result.reason)
    assert [s.name for s in result.samples] == [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
    ]


async def test_sample_with_100000_labels_gives_up_zero_with_a_reason(base: str) -> None:
    result = await scrape(base, "/many-labels")
    assert not result.up
    assert "label" in result.reason


async def test_label_value_with_newlines_and_quotes_is_kept_intact(base: str) -> None:
    result = await scrape(base, "/tricky")
    assert result.up, result.reason
    tricky = [s for s in result.samples if s.name == "tricky"]
    assert len(tricky) == 1
    assert dict(tricky[0].labels)["note"] == TRICKY_VALUE
    assert tricky[0].value == 7.0


async def test_memory_stays_bounded_while_hostile_targets_are_scraped(
    base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every hostile target, all at once and alongside a good one, REPEATS times."""
    paths = ["/endless", "/drip", "/many-labels", "/tricky", "/invalid-utf8", "/good"]
    async with aiohttp.ClientSession() as session:
        await scrape_target(session, target(base + "/good"))  # warm-up: imports, pools
        before = rss_mb()
        peaks = []
        for _ in range(REPEATS):
            results = await asyncio.gather(
                *(scrape_target(session, target(base + p)) for p in paths)
            )
            assert results[-1].up, "a good target next to hostile ones still answers"
            del results
            peaks.append(rss_mb())
    after = rss_mb()
    with capsys.disabled():
        print(
            f"\nhostile targets: rss before={before:.1f}MB after each round="
            f"{', '.join(f'{p:.1f}' for p in peaks)}MB end={after:.1f}MB"
        )
    assert max(peaks) - before < MEMORY_BOUND_MB
    # not growing scrape after scrape: the last round costs no more than the first one
    assert peaks[-1] - peaks[0] < 50.0


def fast_endless(chunk: bytes = b"#" * (1024 * 1024)) -> Handler:
    """An endless body in 1 MiB writes: it reaches the body limit in well under a second."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        try:
            while True:
                await response.write(chunk)
        except (ConnectionError, asyncio.CancelledError):
            pass
        return response

    return handler


CONCURRENT_HOSTILE = 6
BUDGET_MB = 256.0  # for all scrapes in flight together; the per-scrape limit is 64 MiB


async def test_several_endless_targets_at_once_stay_within_a_memory_budget(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with serve({"/fast-endless": fast_endless()}) as url:
        hostile = Target(
            url=url + "/fast-endless",
            host="endless",
            job="reliability",
            labels=make_labels({"host": "endless", "job": "reliability"}),
            interval=10.0,
            timeout=8.0,
        )
        async with aiohttp.ClientSession() as session:
            before = rss_mb()
            peak = before

            async def sample_rss() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, rss_mb(os.getpid()))
                    await asyncio.sleep(0.02)

            sampler = asyncio.create_task(sample_rss())
            try:
                results = await asyncio.gather(
                    *(scrape_target(session, hostile) for _ in range(CONCURRENT_HOSTILE))
                )
            finally:
                sampler.cancel()
    with capsys.disabled():
        print(
            f"\n{CONCURRENT_HOSTILE} endless targets at once: rss before={before:.1f}MB "
            f"peak={peak:.1f}MB ({peak - before:+.1f}MB)"
        )
    assert all(not r.up for r in results)
    assert peak - before < BUDGET_MB
