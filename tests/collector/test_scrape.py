"""Scrapes against real servers on loopback, good and bad side by side."""

import asyncio
import dataclasses
import email.utils
import logging
import re
import time

import aiohttp
import pytest
from aiohttp import web

from collector.scrape import BodyBudget, ScrapeLoop, clock_skew, scrape_target, target_labels
from collector.settings import ScrapeSettings, TargetSettings
from collector.targets import Target, resolve_target
from fleetpulse.core.listen import Listen
from fleetpulse.core.samples import Sample, label_value
from fleetpulse.core.site import start_site
from tests.support.poll import eventually
from tests.support.servers import (
    Handler,
    endless_body,
    free_port,
    hanging,
    serve,
    static_exposition,
)

DEFAULTS = ScrapeSettings()
GOOD = '# TYPE temp gauge\ntemp{room="a"} 21.5\ntemp{room="b",host="inner"} 19\n'


def target(
    url: str,
    host: str = "t",
    timeout: float = 1.0,
    interval: float = 1.0,
    scrape: ScrapeSettings = DEFAULTS,
) -> Target:
    return resolve_target(
        TargetSettings(
            url=url, host=host, labels=(("role", "game"),), timeout=timeout, interval=interval
        ),
        scrape,
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
async def test_bad_target_gets_up_zero_with_a_reason(handler: Handler, reason: str) -> None:
    async with serve({"/metrics": handler}) as base, aiohttp.ClientSession() as s:
        result = await scrape_target(s, target(f"{base}/metrics", timeout=0.5))
    assert not result.up
    assert pytest.approx(0.0) == by_name(result.samples, "up")[0].value
    assert by_name(result.samples, "scrape_samples_scraped")[0].value == 0
    assert re.search(reason, result.reason), result.reason


async def test_refused_connection_gets_up_zero_and_says_so() -> None:
    async with aiohttp.ClientSession() as s:
        result = await scrape_target(s, target(f"http://127.0.0.1:{free_port()}/metrics"))
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

    def ups_of(host: str) -> list[Sample]:
        return [s for s in written if s.name == "up" and label_value(s.labels, "host") == host]

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
        try:
            await eventually(
                lambda: len(ups_of("good")) >= 4, "four scrapes of the good target", within=10
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    good, slow = ups_of("good"), ups_of("slow")
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


def labelled_line(count: int, value: str = "v") -> str:
    return "wide{" + ",".join(f'l{i}="{value}"' for i in range(count)) + "} 1\n"


async def scrape_body(body: str, scrape: ScrapeSettings = DEFAULTS) -> tuple[bool, str]:
    async with serve({"/m": static_exposition(body)}) as base, aiohttp.ClientSession() as s:
        result = await scrape_target(s, target(f"{base}/m", scrape=scrape))
    if not result.up:
        assert [x.name for x in result.samples] == [
            "up",
            "scrape_duration_seconds",
            "scrape_samples_scraped",
        ], "a scrape over a limit keeps none of its samples"
    return result.up, result.reason


async def test_sample_over_the_label_limit_fails_the_scrape_naming_its_line() -> None:
    body = "# HELP wide A wide one.\n# TYPE wide gauge\nok 1\n\n" + labelled_line(65)
    assert await scrape_body(body) == (
        False,
        "sample at line 5 has 65 labels; the limit is 64 (scrape.label_limit)",
    )


async def test_label_limit_counts_exposed_labels_before_the_target_adds_its_own() -> None:
    # 64 exposed + host, job and role from the target = 67 stored: still within the limit
    assert await scrape_body(labelled_line(64)) == (True, "")
    up, reason = await scrape_body(
        labelled_line(3), dataclasses.replace(ScrapeSettings(), label_limit=2)
    )
    assert not up and reason.endswith("has 3 labels; the limit is 2 (scrape.label_limit)")


async def test_label_value_over_the_length_limit_fails_the_scrape() -> None:
    body = 'ok 1\nlong{a="short",b="' + "x" * 2049 + '"} 1\n'
    assert await scrape_body(body) == (
        False,
        "sample at line 2 has a value of 2049 characters for label 'b'; the limit is 2048 "
        "(scrape.label_value_length_limit)",
    )
    assert (await scrape_body('long{b="' + "x" * 2048 + '"} 1\n'))[0]


async def test_value_length_is_counted_in_characters_as_decoded() -> None:
    settings = dataclasses.replace(ScrapeSettings(), label_value_length_limit=4)
    # "é" is two bytes, "\\n" two characters of text for one of value: 4 characters each
    assert (await scrape_body('m{a="éééé",b="a\\nbc"} 1\n', settings))[0]
    up, reason = await scrape_body('m{a="ééééé"} 1\n', settings)
    assert not up and "value of 5 characters for label 'a'" in reason


async def test_sample_limit_fails_a_body_with_too_many_samples_and_zero_means_none() -> None:
    body = "".join(f"m{i} {i}\n" for i in range(11))
    assert (await scrape_body(body))[0]
    limited = dataclasses.replace(ScrapeSettings(), sample_limit=10)
    assert await scrape_body(body, limited) == (
        False,
        "body has 11 samples; the limit is 10 (scrape.sample_limit)",
    )
    assert (await scrape_body(body[: body.index("m10")], limited))[0]


async def test_target_body_size_limit_overrides_the_scrape_default() -> None:
    settings = ScrapeSettings(body_size_limit=50_000)
    small = resolve_target(TargetSettings(url="http://a/m", host="a"), settings)
    big = resolve_target(
        TargetSettings(url="http://a/m", host="a", body_size_limit=90_000), settings
    )
    assert (small.body_size_limit, big.body_size_limit) == (50_000, 90_000)
    async with serve({"/metrics": endless_body()}) as base, aiohttp.ClientSession() as s:
        url = f"{base}/metrics"
        over = await scrape_target(s, dataclasses.replace(big, url=url, timeout=5))
    assert over.reason == "body larger than the limit of 90000 bytes"


async def test_exhausted_body_budget_fails_the_scrape_and_is_given_back_after() -> None:
    budget = BodyBudget(200_000)
    routes = {"/endless": endless_body(), "/good": static_exposition(GOOD)}
    async with serve(routes) as base, aiohttp.ClientSession() as s:
        result = await scrape_target(s, target(f"{base}/endless", timeout=5), budget=budget)
        assert not result.up
        assert result.reason == "scrape memory budget of 200000 bytes exhausted"
        assert budget.used == 0
        # another scrape holding the whole budget leaves none for this one
        other = budget.lease()
        other.take(200_000)
        held = await scrape_target(s, target(f"{base}/good"), budget=budget)
        assert held.reason == "scrape memory budget of 200000 bytes exhausted"
        other.release()
        fine = await scrape_target(s, target(f"{base}/good"), budget=budget)
        assert fine.up, fine.reason
    assert budget.used == 0


async def test_scrape_loops_draw_on_the_budget_they_are_given() -> None:
    budget = BodyBudget(1_000)

    async def sink(samples: list[Sample]) -> None:
        pass

    body = "# " + "x" * 2000 + "\nok 1\n"
    async with serve({"/m": static_exposition(body)}) as base, aiohttp.ClientSession() as s:
        loop = ScrapeLoop(target(f"{base}/m"), s, sink, budget=budget)
        result = await loop.scrape_once()
        unbounded = await ScrapeLoop(target(f"{base}/m"), s, sink).scrape_once()
    assert result.reason == "scrape memory budget of 1000 bytes exhausted"
    assert unbounded.up, unbounded.reason


async def test_a_dead_target_warns_once_per_reason_then_logs_its_recovery_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="collector.scrape")
    statuses = [500, 500, 200]

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=GOOD, status=statuses.pop(0))

    async def sink(samples: list[Sample]) -> None:
        pass

    port = free_port()
    app = web.Application()
    app.router.add_get("/metrics", metrics)
    async with aiohttp.ClientSession() as session:
        loop = ScrapeLoop(target(f"http://127.0.0.1:{port}/metrics"), session, sink)
        dead = [await loop.scrape_once() for _ in range(3)]
        # the same port comes alive, first answering 500 (a new reason), then well
        runner, _ = await start_site(app, Listen("127.0.0.1", port), shutdown_timeout=0.1)
        try:
            failing = [await loop.scrape_once() for _ in range(2)]
            recovered = await loop.scrape_once()
        finally:
            await runner.cleanup()
    assert not any(r.up for r in dead + failing) and recovered.up
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "collector.scrape"]
    assert [level for level, _ in lines] == [
        "WARNING",
        "DEBUG",
        "DEBUG",
        "WARNING",
        "DEBUG",
        "INFO",
    ], lines
    assert "reason=connection failed" in lines[0][1]
    assert "reason=HTTP 500" in lines[3][1]
    assert lines[5][1].startswith("target up again after 5 failures host=t ")


@pytest.mark.parametrize("offset", [-3600.0, 0.0, 95.0])
async def test_a_targets_clock_skew_comes_from_the_date_header_of_its_answer(offset: float) -> None:
    async def answer(request: web.Request) -> web.Response:
        when = email.utils.formatdate(time.time() + offset, usegmt=True)
        return web.Response(text=GOOD, headers={"Date": when})

    async with serve({"/metrics": answer}) as base, aiohttp.ClientSession() as s:
        result = await scrape_target(s, target(f"{base}/metrics"))
    (skew,) = by_name(result.samples, "scrape_clock_skew_seconds")
    # Date has whole seconds: its middle is used, so the estimate is within about half a second
    assert abs(skew.value - offset) <= 1.0
    assert dict(skew.labels) == {"host": "t", "job": "fleetpulse", "role": "game"}


def test_a_missing_or_broken_date_header_gives_no_skew() -> None:
    assert clock_skew(None, 100.0, 100.2) is None
    assert clock_skew("not a date", 100.0, 100.2) is None
    assert clock_skew("Thu, 01 Jan 1970 00:01:40 GMT", 100.0, 100.0) == 0.5
