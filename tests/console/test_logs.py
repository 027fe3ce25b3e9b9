"""The Logs view in chromium: a host's agent log lines arrive live over the API's stream,
the level filter and the search narrow them, and pause stops drawing while resume shows what
arrived meanwhile. The lines come from a synthetic exporter's /logs, pulled by `fleetpulse up`
with every scrape, as from a real exporter."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from tests.console.harness import (
    Usage,
    api_json,
    hosts_scraped,
    running_up,
    up_config,
    watched_page,
)
from tests.console.logsource import serve_logging_fleet
from tests.support.poll import eventually

HOST = "db-1"


async def test_lines_arrive_live_filter_search_pause_and_resume(
    browser: Browser, tmp_path: Path
) -> None:
    hosts = {HOST: Usage()}
    async with serve_logging_fleet(hosts) as fleet, running_up(tmp_path, up_config(fleet)) as up:
        fleet.log(HOST, "info", "service started")
        fleet.log(HOST, "warning", "disk slow on sda", logger="exporter.disk")
        fleet.log(HOST, "error", "backup failed: no space")
        await hosts_scraped(up, hosts)

        async def stored(count: int) -> bool:
            doc = await api_json(up.base, f"/api/v1/hosts/{HOST}/logs")
            return len(doc["lines"]) >= count

        await eventually(lambda: stored(3), "three lines stored", within=30)
        async with watched_page(browser) as watched:
            page = watched.page
            await page.goto(f"{up.base}/#/host/{HOST}")
            await page.get_by_role("link", name="Logs").click()
            rows = page.locator("ol.logs li")
            await expect(rows).to_have_count(3)
            await expect(rows.nth(1)).to_contain_text("WARNING")
            await expect(rows.nth(1)).to_contain_text("exporter.disk")

            # live: a new line reaches the page without a reload
            fleet.log(HOST, "info", "live line one")
            await expect(rows).to_have_count(4)
            await expect(rows.last).to_contain_text("live line one")

            level = page.locator("#log-level")
            await level.select_option("warning")
            await expect(rows).to_have_count(2)
            for text in await rows.all_inner_texts():
                assert "WARNING" in text or "ERROR" in text, text
            await level.select_option("")
            await page.locator("#log-search").fill("BACKUP")
            await expect(rows).to_have_count(1)
            await expect(rows.first).to_contain_text("backup failed: no space")
            await page.locator("#log-search").fill("")
            await expect(rows).to_have_count(4)

            # pause: lines keep arriving but are not drawn until resume
            pause = page.get_by_role("button", name="Pause")
            await pause.click()
            fleet.log(HOST, "info", "while paused one")
            fleet.log(HOST, "error", "while paused two")
            await expect(page.locator("#log-count")).to_contain_text("2 new lines waiting")
            await expect(rows).to_have_count(4)
            await expect(page.locator("ol.logs")).not_to_contain_text("while paused")
            await page.get_by_role("button", name="Resume").click()
            await expect(rows).to_have_count(6)
            await expect(rows.nth(4)).to_contain_text("while paused one")
            await expect(rows.nth(5)).to_contain_text("while paused two")
            await expect(page.get_by_role("button", name="Pause")).to_have_attribute(
                "aria-pressed", "false"
            )
