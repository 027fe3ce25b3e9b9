"""Scrapes against real servers on loopback, good and bad side by side."""

import asyncio
import re
import time

import aiohttp
import pytest

from collector.scrape import ScrapeLoop, scrape_target, target_labels
from collector.targets import Target, resolve_target
from fleetpulse.config import ScrapeSettings, TargetSettings
from fleetpulse.samples import Sample, label_value
from tests.support.servers import closed_port, endless_body, hanging, serve, static_exposition

GOOD = '# TYPE temp gauge\ntemp{room="a"} 21.5\ntemp{room="b",host="inner"} 19\n'


def target(url: str, host: str = "t", timeout: float = 1.0, interval: float = 1.0) -> Target:
    return resolve_target(
        TargetSettings(
            url=url, host=host, labels=(("role", "game"),), timeout=timeout, interval=interval
        ),
        ScrapeSettings(),
    )


def by_name(samples: list[Sample], name: str) -> list[Sample]:
    return [s for s in samples if s.name == name]


async def test_good_target_samples_carry_host_job_and_target_labels() -> None:
    async with serve({"/metrics": static_exposition(GOOD)}) as base, aiohttp.ClientSession() as s:
        result = await scrape_target(s, target(f"{base}/metrics", host="web-1"))
    assert result.up and result.reason == ""
    temps = by_name(result.samples, "temp")
    assert [dict(t.labels) for t in temps] == [
        {"host": "web-1", "job": "fleetpulse", "role": "game", "room": "a"},
        {
            "exported_host": "inner",
            "host": "web-1",
            "job": "fleetpulse",
            "role": "game",
            "room": "b",
        },
    ]
    assert by_name(result.samples, "up")[0].value == 1.0
    assert by_name(result.samples, "scrape_samples_scraped")[0].value == 2.0
    assert by_name(result.samples, "scrape_duration_seconds")[0].value > 0


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (static_exposition("oops", status=500), "HTTP 500"),
        (static_exposition("temp{room=a} 1\n"), "parse error at line 1"),
        (hanging(5), "timeout after 0.5s"),
        (endless_body(), "timeout after 0.5s|body larger than"),
    ],
    ids=["http-500", "garbage", "hangs", "endless-body"],
)
async def test_bad_target_gets_up_zero_with_a_reason(handler, reason: str) -> None:  # type: ignore[no-untyped-def]
    async with serve({"/metrics": handler}) as base, aiohttp.ClientSession() as s:
        result = await scrape_target(s, target(f"{base}/metrics", timeout=0.5))
    assert not result.up
    assert pytest.approx(0.0) == by_name(result.samples, "up")[0].value
    assert by_name(result.samples, "scrape_samples_scraped")[0].value == 0
    assert re.search(reason, result.reason), result.reason


async def test_refused_connection_gets_up_zero_and_says_so() -> None:
    async with aiohttp.ClientSession() as s:
        result = await scrape_target(s, target(f"http://127.0.0.1:{closed_port()}/metrics"))
    assert not result.up
    assert result.reason.startswith("connection failed")


async def test_body_over_the_limit_is_refused() -> None:
    async with serve({"/metrics": endless_body()}) as base, aiohttp.ClientSession() as s:
        result = await scrape_target(s, target(f"{base}/metrics", timeout=5), body_limit=100_000)
    assert result.reason == "body larger than the limit of 100000 bytes"


async def test_dead_target_never_delays_the_others_schedule() -> None:
    """A hanging target and a good one scrape side by side; the good one keeps its slots."""
    written: list[Sample] = []

    async def sink(samples: list[Sample]) -> None:
        written.extend(samples)

    async with (
        serve({"/good": static_exposition(GOOD), "/slow": hanging(30)}) as base,
        aiohttp.ClientSession() as session,
    ):
        loops = [
            ScrapeLoop(
                target(f"{base}/good", host="good", interval=0.5, timeout=0.4), session, sink
            ),
            ScrapeLoop(
                target(f"{base}/slow", host="slow", interval=0.5, timeout=0.4), session, sink
            ),
        ]
        tasks = [asyncio.create_task(loop.run()) for loop in loops]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ups = [s for s in written if s.name == "up" and label_value(s.labels, "host") == "good"]
            if len(ups) >= 4:
                break
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    good = [s for s in written if s.name == "up" and label_value(s.labels, "host") == "good"]
    slow = [s for s in written if s.name == "up" and label_value(s.labels, "host") == "slow"]
    assert len(good) >= 4 and all(s.value == 1.0 for s in good)
    assert slow and all(s.value == 0.0 for s in slow)
    # each good scrape took its own slot (offset + k * interval): none was skipped or doubled
    offset = loops[0].target.offset()
    slots = [round((s.ts_ms / 1000 - offset) / 0.5) for s in good]
    assert slots == list(range(slots[0], slots[0] + len(slots)))


def test_offsets_are_stable_and_spread_within_the_interval() -> None:
    targets = [target(f"http://h{i}:9184/metrics", host=f"h{i}", interval=15) for i in range(200)]
    offsets = [t.offset() for t in targets]
    assert offsets == [t.offset() for t in targets]
    assert all(0 <= o < 15 for o in offsets)
    # spread: every 3-second fifth of the interval gets some targets
    assert {int(o // 3) for o in offsets} == {0, 1, 2, 3, 4}


def test_clashing_exposed_labels_are_kept_as_exported() -> None:
    base = (("host", "web-1"), ("job", "fleetpulse"))
    assert target_labels(base, (("host", "x"), ("job", "y"), ("a", "1"))) == (
        ("a", "1"),
        ("exported_host", "x"),
        ("exported_job", "y"),
        ("host", "web-1"),
        ("job", "fleetpulse"),
    )
