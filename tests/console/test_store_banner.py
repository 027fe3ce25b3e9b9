"""The Fleet page names a failing store (issue #15), against the real `fleetpulse up`:

- its data on a real tmpfs the test fills: the console shows why hosts turn "unknown" rather
  than down, then takes the banner back by itself once the disk has room again;
- on the recording InfluxDB with its token rotated: reads fail too, the hosts request itself
  fails, and the banner still names both sides from the error's `store`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from playwright.async_api import Browser, expect

from tests.collector.test_healthz_influx import BUCKET, latest_points
from tests.console.harness import (
    Usage,
    hosts_scraped,
    running_up,
    serve_fleet,
    up_config,
    watched_page,
)
from tests.support.disks import small_disk
from tests.support.influx_recorder import TOKEN, InfluxRecorder

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


def influx_storage(url: str) -> str:
    """`up` on the recording InfluxDB, with short intervals so a refused token shows at once."""
    return (
        "storage:\n  backend: influxdb\n  influxdb:\n"
        f"    {{url: '{url}', token: {TOKEN}, bucket: {BUCKET}, timeout: 2s, batch_size: 50,\n"
        "     flush_interval: 50ms, max_retries: 1, retry_interval: 20ms, max_retry_delay: 200ms}\n"
    )


async def test_reads_failing_too_the_error_still_names_the_store_and_the_page_recovers(
    browser: Browser, tmp_path: Path, recorder: InfluxRecorder
) -> None:
    """A rotated InfluxDB token fails the hosts request itself: its error carries the store's
    health, so the banner names both sides; a Fleet page opened then keeps trying and draws
    the fleet once the token is right again."""
    recorder.answer_queries(latest_points(recorder))
    hosts = {"web-1": Usage()}
    async with serve_fleet(hosts) as fleet:
        config = up_config(fleet, influx_storage(recorder.url))
        async with running_up(tmp_path, config) as up:
            await hosts_scraped(up, hosts)
            async with watched_page(browser) as watched, watched_page(browser) as late:
                # the API's answers while it cannot read: the failures the test provokes
                for each in (watched, late):
                    each.expect(500, r"^/api/v1/")
                    each.expect(503, r"^/api/v1/")
                await watched.page.goto(up.base + "/")
                await expect(
                    watched.page.locator('tr[data-host="web-1"] .state-up')
                ).to_be_visible()

                recorder.token = "a-rotated-token"
                for side in ("writes", "reads"):
                    await expect(watched.page.get_by_role("alert")).to_contain_text(
                        f"Store degraded: {side} failing (unauthorized) since",
                        timeout=OUTAGE_WAIT_MS,
                    )
                await expect(watched.page.locator("#status")).to_contain_text("Refresh failed")
                await late.page.goto(up.base + "/")
                await expect(late.page.get_by_role("alert")).to_contain_text(
                    "reads failing (unauthorized)"
                )

                recorder.token = TOKEN
                for page in (watched.page, late.page):
                    # the page opened during the outage had no table to draw: it kept trying
                    await expect(page.locator(".store-banner")).to_be_hidden(
                        timeout=RECOVERY_WAIT_MS
                    )
                    await expect(page.locator('tr[data-host="web-1"] .state-up')).to_be_visible(
                        timeout=RECOVERY_WAIT_MS
                    )
                await expect(watched.page.locator("#status")).to_have_text("")
