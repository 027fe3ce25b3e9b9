"""The Alerts page in chromium against `fleetpulse up`: a rule that fires on a synthetic host
within seconds, a webhook channel that is a real recorder and a channel whose port is dead."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from tests.alerting.recorders import HttpRecorder, http_recorder
from tests.console.harness import Usage, running_up, serve_fleet, up_config, watched_page
from tests.support.poll import eventually
from tests.support.servers import free_port

RULES = """\
groups:
  - name: test
    interval: 1s
    rules:
      - alert: CpuHot
        metric: 'host_cpu_usage_percent{host=~"web-.*"}'  # not this machine's own exporter
        window: 5s
        op: ">"
        threshold: 80
        severity: critical
        cooldown: 1h
        annotations:
          summary: "CPU hot on {{ labels.host }}"
"""
SECRETS = ("pa55word", "s3cr3t-t0ken")


def alerting_config(webhook: HttpRecorder) -> str:
    hook = webhook.base.split("://", 1)[1]
    dead = f"json://user:{SECRETS[0]}@127.0.0.1:{free_port()}/hook/{SECRETS[1]}"
    return (
        "alerting:\n"
        "  rules: [rules]\n"
        "  interval: 1s\n"
        "  notify_retries: 0\n"
        "  default_channels: [hook]\n"
        "  channels:\n"
        f"    hook: ['json://{hook}/hook']\n"
        f"    dead: ['{dead}']\n"
    )


async def test_the_alerts_page_shows_the_firing_alert_its_history_rules_and_channel_tests(
    browser: Browser, tmp_path: Path
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "test.yaml").write_text(RULES)
    hosts = {"web-hot": Usage(cpu=95), "web-cool": Usage(cpu=10)}
    async with (
        http_recorder() as webhook,
        serve_fleet(hosts) as fleet,
        running_up(tmp_path, up_config(fleet, alerting_config(webhook))) as up,
    ):
        await eventually(lambda: webhook.on("/hook"), "the firing alert delivered", within=30)
        async with watched_page(browser) as watched:
            page = watched.page
            await page.goto(up.base + "/#/alerts")
            await expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
            await expect(page.locator('nav a[data-page="alerts"]')).to_have_attribute(
                "aria-current", "page"
            )

            firing = page.locator('#active tr[data-alert="CpuHot"][data-host="web-hot"]')
            await expect(firing).to_contain_text("firing")
            await expect(firing).to_contain_text("critical")
            await expect(firing).to_contain_text("CPU hot on web-hot")
            await expect(page.locator('#active tr[data-host="web-cool"]')).to_have_count(0)

            history = page.locator("#history")
            transition = history.locator('tr[data-event="transition"][data-host="web-hot"]')
            await expect(transition.first).to_contain_text("→ firing")
            delivery = history.locator('tr[data-event="notification"][data-host="web-hot"]')
            await expect(delivery.first).to_contain_text("firing via hook: delivered")
            # the host filter asks the API for that host's history only
            await page.locator("#history-host").select_option("web-cool")
            await expect(history).to_contain_text("Nothing happened in this range.")
            await page.locator("#history-host").select_option("")
            await page.locator("#history-range").select_option("-1h")
            await expect(transition.first).to_be_visible()
            # a custom range before the alert holds none of it; a backwards one is refused
            await expect(page.locator("#history-from")).to_be_hidden()
            await page.locator("#history-range").select_option("custom")
            await page.locator("#history-from").fill("2020-01-01T00:00")
            await page.locator("#history-to").fill("2020-01-02T00:00")
            await expect(history).to_contain_text("Nothing happened in this range.")
            await page.locator("#history-from").fill("2020-01-03T00:00")
            await expect(history.get_by_role("alert")).to_have_text(
                "The range must start before it ends."
            )
            await page.locator("#history-range").select_option("-24h")
            await expect(transition.first).to_be_visible()

            rule = page.locator('#rules tr[data-rule="CpuHot"]')
            await expect(rule).to_contain_text(
                'last(host_cpu_usage_percent{host=~"web-.*"}[5s]) > 80'
            )
            await expect(rule).to_contain_text("1 firing")
            await expect(rule).to_contain_text("hook")

            tests_before = len([r for r in webhook.on("/hook") if "[TEST]" in r.text])
            hook = page.locator('#channels li[data-channel="hook"]')
            await hook.get_by_role("button", name="Send test through hook").click()
            await expect(hook.locator(".result")).to_have_text("✓ Delivered")
            tests = [r for r in webhook.on("/hook") if "[TEST]" in r.text]
            assert len(tests) == tests_before + 1

            dead = page.locator('#channels li[data-channel="dead"]')
            await dead.get_by_role("button", name="Send test through dead").click()
            result = dead.locator(".result")
            await expect(result).to_contain_text("✗ Failed:")
            await expect(result).to_contain_text("Connection refused")
            shown = await page.content()
            for secret in SECRETS:
                assert secret not in shown, secret


async def test_with_a_token_send_test_works_on_the_session_after_signing_in(
    browser: Browser, tmp_path: Path
) -> None:
    token = "alerts-page-t0ken-777"
    hosts = {"web-cool": Usage(cpu=10)}
    async with http_recorder() as webhook, serve_fleet(hosts) as fleet:
        config = up_config(fleet, alerting_config(webhook)).replace(
            'api: {listen: "127.0.0.1:0"}', f'api: {{listen: "127.0.0.1:0", token: "{token}"}}'
        )
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "test.yaml").write_text(RULES)
        async with running_up(tmp_path, config) as up, watched_page(browser) as watched:
            watched.expect(401, r"^/api/v1/")  # the page's first calls, before signing in
            page = watched.page
            await page.goto(up.base + "/#/alerts")
            await page.locator("#token").fill(token)
            await page.get_by_role("button", name="Sign in").click()
            hook = page.locator('#channels li[data-channel="hook"]')
            # the POST carries only the session cookie and the page's own Origin
            await hook.get_by_role("button", name="Send test through hook").click()
            await expect(hook.locator(".result")).to_have_text("✓ Delivered")
            assert [r for r in webhook.on("/hook") if "[TEST]" in r.text]
            assert token not in await page.content()
