"""The Host page in chromium: ranges and the tier the API reports, drag-select zoom and
double-click reset, the tooltip's value against the API's, PNG and CSV export."""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from tests.console.harness import (
    Up,
    Usage,
    api_json,
    hosts_scraped,
    running_up,
    serve_fleet,
    up_config,
    watched_page,
)
from tests.support.poll import eventually

HOST = "web-1"
SETTLED_MS = 5_000  # flush interval + a scrape + margin
CPU = f"/api/v1/hosts/{HOST}/metrics/history?metric=host_cpu_usage_percent"
# how many distinct colours a PNG has, decoded by the browser itself
COLOURS = """async (b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const blob = new Blob([bytes], { type: "image/png" });
  const image = await createImageBitmap(blob);
  const canvas = new OffscreenCanvas(image.width, image.height);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0);
  const data = ctx.getImageData(0, 0, image.width, image.height).data;
  const seen = new Set();
  for (let i = 0; i < data.length; i += 4) seen.add(data[i] << 16 | data[i + 1] << 8 | data[i + 2]);
  return seen.size;
}"""


@dataclass
class HostPage:
    up: Up
    page: Page


async def cpu_points(up: Up) -> bool:
    doc = await api_json(up.base, f"{CPU}&start=-1m")
    return bool(doc["series"]) and len(doc["series"][0]["points"]) >= 5


@pytest.fixture
async def host_page(browser: Browser, tmp_path: Path) -> AsyncIterator[HostPage]:
    hosts = {HOST: Usage(cpu=42, memory=55, disk={"/": 30, "/data": 80})}
    async with serve_fleet(hosts) as fleet, running_up(tmp_path, up_config(fleet)) as up:
        await hosts_scraped(up, hosts)
        await eventually(lambda: cpu_points(up), "five CPU points", within=30)
        async with watched_page(browser) as watched:
            await watched.page.goto(f"{up.base}/#/host/{HOST}")
            await expect(watched.page.locator("#chart-cpu .tier")).to_contain_text("tier raw")
            yield HostPage(up, watched.page)


async def chart_state(page: Page, chart: str = "cpu") -> dict[str, int]:
    box = page.locator(f"#chart-{chart}")
    return {
        key: int(await box.get_attribute(f"data-{key}") or 0) for key in ("start", "end", "step")
    }


async def test_range_buttons_change_the_tier_the_api_reports(host_page: HostPage) -> None:
    page = host_page.page
    # the host's usage, each named and rated in words
    await expect(page.locator("main")).to_contain_text("cpu 42.0% ok")
    await expect(page.locator("main")).to_contain_text("disk 80.0% warning")
    tier = page.locator("#chart-cpu .tier")
    for button, expected in (("7d", "hourly"), ("90d", "daily"), ("1h", "raw")):
        await page.get_by_role("button", name=button, exact=True).click()
        await expect(tier).to_have_attribute("data-tier", expected)
        await expect(page.get_by_role("button", name=button, exact=True)).to_have_attribute(
            "aria-pressed", "true"
        )
    # the disk chart draws a line per mountpoint, with warning and critical levels
    assert await page.locator("#chart-disk canvas").count() >= 1


async def test_drag_select_zooms_at_a_finer_step_and_double_click_restores(
    host_page: HostPage,
) -> None:
    page = host_page.page
    await page.get_by_role("button", name="24h", exact=True).click()
    await expect(page.locator("#chart-cpu")).to_have_attribute("data-step", "155")
    before = await chart_state(page)
    over = page.locator("#chart-cpu .u-over")
    area = await over.bounding_box()
    assert area is not None
    y = area["y"] + area["height"] / 2
    await page.mouse.move(area["x"] + area["width"] * 0.6, y)
    await page.mouse.down()
    await page.mouse.move(area["x"] + area["width"] * 0.9, y, steps=5)
    await page.mouse.up()
    await expect(page.locator("#chart-cpu")).not_to_have_attribute("data-step", "155")
    zoomed = await chart_state(page)
    assert before["start"] < zoomed["start"] < zoomed["end"] < before["end"], (before, zoomed)
    assert zoomed["step"] < before["step"]
    # every chart follows the zoom
    assert (await chart_state(page, "memory"))["step"] == zoomed["step"]
    await over.dblclick()
    await expect(page.locator("#chart-cpu")).to_have_attribute("data-step", "155")
    assert await chart_state(page) == before


async def test_the_tooltip_shows_the_value_the_api_has_for_that_time(host_page: HostPage) -> None:
    page = host_page.page
    over = page.locator("#chart-cpu .u-over")
    area = await over.bounding_box()
    assert area is not None
    await page.mouse.move(area["x"] + area["width"] - 3, area["y"] + area["height"] / 2)
    tip = page.locator("#chart-cpu .tip")
    await expect(tip).to_contain_text("42.0%")
    ts = int(await tip.get_attribute("data-ts") or 0)
    state = await chart_state(page)
    doc = await api_json(
        host_page.up.base,
        f"{CPU}&start={state['start'] / 1000:.3f}&end={state['end'] / 1000:.3f}"
        f"&step={state['step']}s",
    )
    by_time = dict((t, v) for t, v in doc["series"][0]["points"])
    assert ts in by_time
    assert f"{by_time[ts]:.1f}%" in (await tip.text_content() or "")


async def test_png_export_is_a_png_of_the_charts_size_with_more_than_one_colour(
    host_page: HostPage,
) -> None:
    page = host_page.page
    async with page.expect_download() as info:
        await page.locator("#chart-cpu").get_by_role("button", name="PNG").click()
    download = await info.value
    assert download.suggested_filename == f"{HOST}-cpu.png"
    data = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    canvas = page.locator("#chart-cpu .plot canvas")
    size: dict[str, Any] = await canvas.evaluate("c => ({w: c.width, h: c.height})")
    assert (width, height) == (size["w"], size["h"]) and width >= 500
    assert await page.evaluate(COLOURS, base64.b64encode(data).decode()) > 1


async def test_csv_export_is_the_apis_csv_for_the_charts_range_and_step(
    host_page: HostPage,
) -> None:
    page = host_page.page
    link = page.locator("#chart-cpu").get_by_role("link", name="CSV")
    href = await link.get_attribute("href")
    assert href is not None and "format=csv" in href and "token" not in href
    # samples reach the store up to a flush interval (2s) after their scrape time: compare
    # once the chart's range has no more points on the way
    end = (await chart_state(page))["end"]
    await eventually(lambda: time.time() * 1000 - end > SETTLED_MS, "the range to settle")
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    exported = await asyncio.to_thread(Path(await download.path()).read_text)
    async with aiohttp.ClientSession() as session, session.get(href) as response:
        assert await response.text() == exported
    state = await chart_state(page)
    assert f"step={state['step']}s" in href
    assert exported.startswith("time,host,value\n") and exported.count("\n") >= 2  # a row or more
