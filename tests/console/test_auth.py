"""The console with `api.token` set, in chromium: it shows a sign-in form, refuses a wrong
token, and with the right one every page loads and the log stream runs on the session
cookie. The token appears in no request URL, no cookie and nowhere in the page."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from playwright.async_api import Browser, Request, expect

from tests.console.harness import Usage, running_up, up_config
from tests.console.logsource import serve_logging_fleet
from tests.support.poll import eventually

HOST = "app-1"
TOKEN = "s3cret-console-token-4242"


async def host_seen(base: str) -> bool:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session,
        session.get(f"{base}/api/v1/hosts") as response,
    ):
        assert response.status == 200, await response.text()
        return any(h["host"] == HOST for h in (await response.json())["hosts"])


async def test_sign_in_once_then_pages_and_stream_work_without_the_token_in_sight(
    browser: Browser, tmp_path: Path
) -> None:
    async with serve_logging_fleet({HOST: Usage(cpu=12)}) as fleet:
        config = up_config(fleet).replace(
            'api: {listen: "127.0.0.1:0"}', f'api: {{listen: "127.0.0.1:0", token: "{TOKEN}"}}'
        )
        assert TOKEN in config
        fleet.log(HOST, "info", "before sign-in")
        async with running_up(tmp_path, config) as up:
            await eventually(lambda: host_seen(up.base), "the host scraped", within=30)
            context = await browser.new_context()
            page = await context.new_page()
            urls: list[str] = []
            problems: list[str] = []
            page.on("request", lambda request: urls.append(request.url))
            page.on("pageerror", lambda error: problems.append(str(error)))

            def failed(request: Request) -> None:
                if "ERR_ABORTED" not in (request.failure or ""):
                    problems.append(f"{request.url}: {request.failure}")

            page.on("requestfailed", failed)
            try:
                await page.goto(f"{up.base}/#/")
                token = page.locator("#token")
                await expect(token).to_be_visible()
                await expect(page.locator("main")).not_to_contain_text(HOST)

                await token.fill("not-the-token")
                await page.get_by_role("button", name="Sign in").click()
                await expect(page.locator("#login-error")).to_contain_text("Wrong token")
                await expect(page.locator("main")).not_to_contain_text(HOST)

                await token.fill(TOKEN)
                await page.get_by_role("button", name="Sign in").click()
                await expect(page.locator("main table")).to_contain_text(HOST)
                await expect(page.get_by_role("button", name="Sign out")).to_be_visible()

                # the host page, then the log stream, which only a cookie can authorise
                await page.goto(f"{up.base}/#/host/{HOST}")
                await expect(page.locator("#chart-cpu")).to_be_visible()
                await page.goto(f"{up.base}/#/host/{HOST}/logs")
                await expect(page.locator("ol.logs")).to_contain_text("before sign-in")
                fleet.log(HOST, "warning", "after sign-in, live")
                await expect(page.locator("ol.logs")).to_contain_text("after sign-in, live")
                # a reload keeps the session: the token was asked for once
                await page.reload()
                await expect(page.locator("ol.logs")).to_contain_text("after sign-in, live")
                assert await page.locator("#token").count() == 0

                cookies = await context.cookies()
                assert [c["name"] for c in cookies] == ["fleetpulse_session"]
                assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
                assert cookies[0]["value"] != TOKEN
                assert await page.evaluate("document.cookie") == ""
                html = await page.content()
                storage = await page.evaluate(
                    "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
                )
                for where in (html, storage, *urls):
                    assert TOKEN not in where, where
                assert any("/logs/stream" in url for url in urls)
                # a write on the cookie alone passes: the browser sends this origin with it
                reset = await page.evaluate(
                    f"() => fetch('/api/v1/hosts/{HOST}/thresholds', {{method: 'DELETE'}})"
                    ".then((r) => r.status)"
                )
                assert reset == 200

                await page.get_by_role("button", name="Sign out").click()
                await expect(page.locator("#token")).to_be_visible()
                await page.goto(f"{up.base}/#/host/{HOST}")
                await expect(page.locator("#token")).to_be_visible()
                assert problems == [], problems
            finally:
                await context.close()
