"""The Fleet page names a failing store (issue #15): `fleetpulse up` keeps its data on a real
tmpfs the test fills, and the console shows why hosts turn "unknown" rather than down, then
takes the banner back by itself once the disk has room again."""

from __future__ import annotations

import asyncio
import time
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
from tests.support.disks import small_disk

DISK_MB = 8  # room for a fresh store and its first minutes of samples
FRESH_S = 3  # the hosts answer calls an `up` fresh for three scrape intervals of 1 s
OUTAGE_WAIT_MS = 30_000  # the store meets the full disk at its next write batch
# SQLite counts an outage over after 5 s of good writes; then the next refresh clears it
RECOVERY_WAIT_MS = 45_000


async def test_a_full_disk_shows_a_banner_naming_it_no_host_down_and_it_goes_away(
    browser: Browser, tmp_path: Path
) -> None:
    hosts = {"web-1": Usage(), "db-1": Usage()}
    # the tmpfs is `up`'s --data-dir (running_up uses work/data) and outlives `up`
    with small_disk(tmp_path / "data", DISK_MB) as disk:
        async with serve_fleet(hosts) as fleet, running_up(tmp_path, up_config(fleet)) as up:
            # the fleet's hosts and `up`'s own exporter
            count = len(await hosts_scraped(up, hosts))
            async with watched_page(browser) as watched:
                page = watched.page
                await page.goto(up.base + "/")
                rows = page.locator("tbody tr[data-host]")
                await expect(rows.locator(".state-up")).to_have_count(count)
                banner = page.get_by_role("alert").filter(has_text="Store degraded")
                await expect(banner).to_have_count(0)

                await asyncio.to_thread(disk.fill)
                await expect(banner).to_contain_text(
                    "Store degraded: writes failing (disk_full) since", timeout=OUTAGE_WAIT_MS
                )
                await expect(banner).to_contain_text("database or disk is full")
                await expect(banner).to_contain_text("free space")
                await expect(banner.locator("time[datetime]")).to_have_count(1)

                # a page drawn once every `up` from before the fill is stale: a host whose
                # samples the store could not keep is unknown, never down
                stale_after = int(time.time() * 1000) + (FRESH_S + 1) * 1000
                await page.wait_for_function(
                    f"() => Number(document.getElementById('main').dataset.drawn) > {stale_after}",
                    timeout=OUTAGE_WAIT_MS,
                )
                await expect(banner).to_be_visible()
                await expect(rows).to_have_count(count)
                await expect(rows.locator(".state-down")).to_have_count(0)
                await expect(page.get_by_text(f"{count} hosts, 0 down")).to_be_visible()

                await asyncio.to_thread(disk.free)
                await expect(banner).to_have_count(0, timeout=RECOVERY_WAIT_MS)
                await expect(rows.locator(".state-up")).to_have_count(
                    count, timeout=RECOVERY_WAIT_MS
                )
                # an empty banner stays in the page for the next outage, and is not shown
                await expect(page.locator(".store-banner")).to_be_hidden()
