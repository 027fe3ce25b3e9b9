"""The Fleet page in chromium against `fleetpulse up` scraping synthetic hosts."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from tests.console.harness import (
    Usage,
    hosts_scraped,
    running_up,
    serve_fleet,
    up_config,
    watched_page,
)


async def test_up_prints_the_console_and_the_fleet_page_lists_every_scraped_host(
    browser: Browser, tmp_path: Path
) -> None:
    hosts = {"web-1": Usage(cpu=12), "db-1": Usage(cpu=30)}
    async with serve_fleet(hosts) as fleet, running_up(tmp_path, up_config(fleet)) as up:
        assert f"  console   {up.base}/\n" in up.banner
        await hosts_scraped(up, hosts)
        async with watched_page(browser) as watched:
            page = watched.page
            await page.goto(up.base + "/")
            await expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
            for name in hosts:
                await expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
