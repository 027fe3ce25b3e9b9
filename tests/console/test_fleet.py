"""The Fleet page in chromium against `fleetpulse up` scraping synthetic hosts."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Locator, Page, expect

from tests.console.harness import (
    Usage,
    hosts_scraped,
    running_up,
    serve_fleet,
    up_config,
    watched_page,
)

# the alpha channel of every pixel of a canvas that is not transparent
PAINTED = "c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data" \
    ".filter((v, i) => i % 4 === 3 && v > 0).length"  # fmt: skip


def badge(page: Page, host: str, key: str) -> Locator:
    return page.locator(f'tr[data-host="{host}"] .badge[data-key="{key}"]')


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


async def test_badges_say_the_level_in_words_and_colour_and_sparklines_draw(
    browser: Browser, tmp_path: Path
) -> None:
    # the built-in thresholds: cpu warning 70, critical 85; db-* hosts have their own disk levels
    hosts = {
        "web-hot": Usage(cpu=90),
        "web-warm": Usage(cpu=75),
        "web-cool": Usage(cpu=10),
        "db-1": Usage(cpu=10, disk={"/": 65}),
    }
    async with serve_fleet(hosts) as fleet, running_up(tmp_path, up_config(fleet)) as up:
        await hosts_scraped(up, hosts)
        async with watched_page(browser) as watched:
            page = watched.page
            await page.goto(up.base + "/")
            hot, warm, cool = (badge(page, h, "cpu") for h in ("web-hot", "web-warm", "web-cool"))
            await expect(hot).to_have_text("90.0% critical")
            await expect(warm).to_have_text("75.0% warning")
            await expect(cool).to_have_text("10.0% ok")
            colours = [
                await page.locator(f'tr[data-host="{h}"] .badge[data-key="cpu"]').evaluate(
                    "b => getComputedStyle(b).color"
                )
                for h in ("web-hot", "web-warm", "web-cool")
            ]
            assert len(set(colours)) == 3, colours
            # db-* disk: warning 60 (built-in override) makes 65% a warning, and says so
            db = page.locator('tr[data-host="db-1"]')
            await expect(db.locator('.badge[data-key="disk"]')).to_have_text("65.0% warning")
            await expect(db.get_by_text("customised")).to_be_visible()
            await expect(
                page.locator('tr[data-host="web-hot"]').get_by_text("customised")
            ).to_have_count(0)
            # a sparkline per usage, painted from the first point of the last hour on
            spark = page.locator('tr[data-host="web-hot"] canvas.spark').first
            await expect(spark).to_have_attribute("aria-label", "CPU, last hour")
            await page.wait_for_function(
                f"() => {{ const c = document.querySelector('tr[data-host=\"web-hot\"] canvas.spark');"
                f" return c && ({PAINTED})(c) > 0; }}",
                timeout=20_000,
            )


async def test_the_fleet_page_refreshes_itself_and_rows_expand_to_charts(
    browser: Browser, tmp_path: Path
) -> None:
    hosts = {"web-1": Usage(cpu=10)}
    async with serve_fleet(hosts) as fleet, running_up(tmp_path, up_config(fleet)) as up:
        await hosts_scraped(up, hosts)
        async with watched_page(browser) as watched:
            page = watched.page
            await page.goto(up.base + "/")
            cpu = badge(page, "web-1", "cpu")
            await expect(cpu).to_have_text("10.0% ok")
            hosts["web-1"].cpu = 95
            # no reload: the page asks again every scrape interval (1s here)
            await expect(cpu).to_have_text("95.0% critical", timeout=15_000)
            button = page.get_by_role("button", name="charts of web-1")
            await button.focus()
            await page.keyboard.press("Enter")
            await expect(button).to_have_attribute("aria-expanded", "true")
            await expect(page.locator("tr.expand .chart canvas").first).to_be_visible()
            await expect(page.locator("tr.expand .chart")).to_have_count(3)
