"""The Host page's thresholds panel in chromium against `fleetpulse up` scraping synthetic
hosts: an override turns the badge, is what the API and the alert engine use (the alert
reaches a webhook recorder), survives a restart on the same data dir, and resets; invalid
input is refused next to its field and nothing reaches the store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from fleetpulse.core.defaults import BUILTIN_RULES
from tests.alerting.recorders import HttpRecorder, http_recorder
from tests.console.harness import (
    SyntheticFleet,
    Usage,
    api_json,
    hosts_scraped,
    running_up,
    serve_fleet,
    up_config,
    watched_page,
)
from tests.support.poll import eventually

# the built-in thresholds give disk warning 70, critical 85; a short `for` keeps the test quick
RULE = """\
groups:
  - name: disk
    interval: 1s
    rules:
      - alert: DiskOverThreshold
        metric: host_disk_usage_percent
        reduce: last
        window: 30s
        op: ">"
        threshold: disk
        for: 2s
        annotations:
          summary: "Disk {{ labels.mountpoint }} on {{ labels.host }} over {{ threshold }}%"
"""


def config(work: Path, fleet: SyntheticFleet, hook: HttpRecorder) -> str:
    rules = work / "rules"
    rules.mkdir(exist_ok=True)
    shutil.copy(BUILTIN_RULES / "thresholds.yaml", rules / "thresholds.yaml")
    (rules / "disk.yaml").write_text(RULE)
    channel = json.dumps(f"json://{hook.base.removeprefix('http://')}/hook")
    return up_config(
        fleet,
        f"alerting:\n  rules: [{json.dumps(str(rules))}]\n  interval: 1s\n"
        f"  channels: {{hook: [{channel}]}}\n  default_channels: [hook]\n",
    )


async def host_info(base: str, host: str) -> dict[str, Any]:
    hosts = (await api_json(base, "/api/v1/hosts"))["hosts"]
    found: dict[str, Any] = next(h for h in hosts if h["host"] == host)
    return found


async def stored_overrides(base: str, host: str) -> dict[str, Any]:
    answer: dict[str, Any] = await api_json(base, f"/api/v1/hosts/{host}/thresholds")
    return answer


async def set_levels(page: Page, key: str, warning: str, critical: str) -> None:
    await page.get_by_label(f"{key} warning (%)").fill(warning)
    await page.get_by_label(f"{key} critical (%)").fill(critical)
    # the keyboard alone: Enter in a field submits the panel
    await page.get_by_label(f"{key} critical (%)").press("Enter")


async def test_an_override_turns_the_badge_fires_the_alert_survives_a_restart_and_resets(
    browser: Browser, tmp_path: Path
) -> None:
    hosts = {"web-1": Usage(disk={"/": 40}), "web-2": Usage(disk={"/": 40})}
    async with serve_fleet(hosts) as fleet, http_recorder() as hook:
        text = config(tmp_path, fleet, hook)
        async with running_up(tmp_path, text) as up:
            await hosts_scraped(up, hosts)
            async with watched_page(browser) as watched:
                page = watched.page
                await page.goto(up.base + "/#/host/web-1")
                disk = page.locator('#usage .badge[data-key="disk"]')
                await expect(disk).to_have_text("40.0% ok")
                await expect(page.locator("#host-customised")).to_be_hidden()
                await set_levels(page, "Disk", "30", "85")
                await expect(disk).to_have_text("40.0% warning")
                await expect(page.locator("#host-customised")).to_be_visible()
                await expect(page.locator('[data-overridden="disk"]')).to_be_visible()
            web1 = await host_info(up.base, "web-1")
            assert web1["customized"] is True
            assert web1["thresholds"]["disk"] == {"warning": 30, "critical": 85}
            assert (await host_info(up.base, "web-2"))["customized"] is False

            def fired() -> bool:
                return any(
                    "DiskOverThreshold" in r.text and "web-1" in r.text for r in hook.received
                )

            await eventually(fired, "the disk alert of web-1 at the webhook", within=30)
            assert not any("web-2" in r.text for r in hook.received)
        # the same data dir again: the override is in the store, not in the process
        async with running_up(tmp_path, text) as up:
            await hosts_scraped(up, hosts)
            assert (await stored_overrides(up.base, "web-1"))["overridden"] == ["disk"]
            async with watched_page(browser) as watched:
                page = watched.page
                await page.goto(up.base + "/#/host/web-1")
                await expect(page.get_by_label("Disk warning (%)")).to_have_value("30")
                await expect(page.locator("#host-customised")).to_be_visible()
                await page.get_by_role("button", name="Reset to defaults").click()
                disk = page.locator('#usage .badge[data-key="disk"]')
                await expect(disk).to_have_text("40.0% ok")
                await expect(page.get_by_label("Disk warning (%)")).to_have_value("70")
                await expect(page.locator("#host-customised")).to_be_hidden()
            web1 = await host_info(up.base, "web-1")
            assert web1["customized"] is False
            assert web1["thresholds"]["disk"] == {"warning": 70, "critical": 85}


async def test_invalid_levels_are_refused_next_to_their_field_and_nothing_is_saved(
    browser: Browser, tmp_path: Path
) -> None:
    hosts = {"web-1": Usage(disk={"/": 40})}
    async with serve_fleet(hosts) as fleet, running_up(tmp_path, up_config(fleet)) as up:
        await hosts_scraped(up, hosts)
        async with watched_page(browser) as watched:
            page = watched.page
            await page.goto(up.base + "/#/host/web-1")
            cases = [
                ("Disk", "abc", "85", "disk-warning", "Enter a number."),
                ("Disk", "90", "80", "disk-warning", "Warning must be below critical."),
                ("CPU", "50", "150", "cpu-critical", "Enter a value from 0 to 100."),
            ]
            for key, warning, critical, field, message in cases:
                await set_levels(page, key, warning, critical)
                await expect(page.locator(f"#error-{field}")).to_have_text(message)
                level = field.split("-")[1]
                invalid = page.get_by_label(f"{key} {level} (%)")
                await expect(invalid).to_have_attribute("aria-invalid", "true")
                await expect(invalid).to_be_focused()
                await page.reload()
            after = await stored_overrides(up.base, "web-1")
            assert after["overridden"] == [] and after["customized"] is False
            assert after["thresholds"] == after["defaults"]
            await expect(page.locator('#usage .badge[data-key="disk"]')).to_have_text("40.0% ok")
