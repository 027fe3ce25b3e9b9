"""What the console's browser tests drive: synthetic exporters whose values the test sets,
`fleetpulse up` scraping them as a real subprocess, and Debian's chromium through Playwright
with every console error and failed request recorded.

Nothing is mocked: the console talks to a real API over a real store, fed by real scrapes.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from playwright.async_api import Browser, Page, Request, Response, async_playwright

from console.routes import vendor_missing
from tests.support.poll import eventually
from tests.support.require import missing
from tests.support.servers import serve_app

BANNER_WAIT = 60.0  # seconds for `fleetpulse up` to print its banner
STOP_WAIT = 30.0


@dataclass
class Usage:
    """What one synthetic host exposes; the test changes it between scrapes."""

    cpu: float = 10.0
    memory: float = 20.0
    disk: dict[str, float] = field(default_factory=lambda: {"/": 30.0})
    up: bool = True

    def exposition(self) -> str:
        lines = [
            f"host_cpu_usage_percent {self.cpu}",
            f"host_memory_usage_percent {self.memory}",
        ]
        for mountpoint, value in self.disk.items():
            lines.append(
                f'host_disk_usage_percent{{mountpoint="{mountpoint}",device="sda",'
                f'fstype="ext4"}} {value}'
            )
        return "\n".join(lines) + "\n"


@dataclass
class SyntheticFleet:
    """Exporters at `{base}/{host}/metrics`, each answering with its host's `Usage`."""

    hosts: dict[str, Usage]
    base: str = ""

    def app(self) -> web.Application:
        async def metrics(request: web.Request) -> web.Response:
            usage = self.hosts.get(request.match_info["host"])
            if usage is None or not usage.up:
                raise web.HTTPServiceUnavailable()
            return web.Response(text=usage.exposition(), content_type="text/plain")

        app = web.Application()
        app.router.add_get("/{host}/metrics", metrics)
        return app

    def targets_yaml(self) -> str:
        return "".join(
            f"    - {{url: '{self.base}/{host}/metrics', host: {host}}}\n" for host in self.hosts
        )


@asynccontextmanager
async def serve_fleet(hosts: dict[str, Usage]) -> AsyncIterator[SyntheticFleet]:
    fleet = SyntheticFleet(hosts)
    async with serve_app(fleet.app()) as base:
        fleet.base = base
        yield fleet


def up_config(fleet: SyntheticFleet, extra: str = "") -> str:
    """`fleetpulse up` scraping the fleet every second, on free loopback ports."""
    return (
        "scrape:\n  interval: 1s\n  timeout: 1s\n  targets:\n"
        f"{fleet.targets_yaml()}"
        'exporter: {listen: "127.0.0.1:0", interval: 1s}\n'
        'api: {listen: "127.0.0.1:0"}\n'
        f"{extra}"
    )


@dataclass
class Up:
    """A running `fleetpulse up`: its console's base URL and what it printed."""

    proc: asyncio.subprocess.Process
    base: str
    banner: str
    stderr: Path

    async def stop(self) -> str:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_WAIT):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        errors = await asyncio.to_thread(self.stderr.read_text)
        assert self.proc.returncode == 0, errors
        assert "Traceback" not in errors, errors
        return errors


@asynccontextmanager
async def running_up(work: Path, config_text: str) -> AsyncIterator[Up]:
    """`fleetpulse up -c work/fleetpulse.yaml --data-dir work/data` until the block ends."""
    config = work / "fleetpulse.yaml"
    config.write_text(config_text)
    # one log per start, so a restarted `up` keeps what the first one said
    starts = await asyncio.to_thread(lambda: len(list(work.glob("up-*.err"))))
    stderr = work / f"up-{starts}.err"
    with stderr.open("w") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fleetpulse", "up", "-c", str(config),
            "--data-dir", str(work / "data"),
            cwd=work, stdout=asyncio.subprocess.PIPE, stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1",
                 "DOCKER_HOST": f"unix://{work}/no-docker.sock"},
        )  # fmt: skip
    assert proc.stdout is not None
    banner = ""
    up: Up | None = None
    try:
        async with asyncio.timeout(BANNER_WAIT):
            while "Press Ctrl-C" not in banner:
                line = await proc.stdout.readline()
                if not line:
                    break
                banner += line.decode()
        match = re.search(r"console\s+(http://[\d.]+:\d+)/", banner)
        assert match is not None, f"no console in the banner:\n{banner}\n{stderr.read_text()}"
        up = Up(proc, match.group(1), banner, stderr)
        yield up
    finally:
        if up is None:
            proc.kill()
            await proc.wait()
        else:
            await up.stop()


async def api_json(base: str, path: str) -> Any:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(base + path) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def hosts_scraped(up: Up, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The API's hosts once each of `names` has CPU, memory and disk values."""

    async def ready() -> dict[str, dict[str, Any]] | None:
        hosts = {h["host"]: h for h in (await api_json(up.base, "/api/v1/hosts"))["hosts"]}
        wanted = [hosts.get(name) for name in names]
        if all(h is not None and None not in (h["cpu"], h["memory"], h["disk"]) for h in wanted):
            return hosts
        return None

    return await eventually(ready, "every synthetic host scraped", within=30)


def chromium() -> str:
    """Debian's chromium, or the test is skipped (failed under FLEETPULSE_REQUIRE_ALL=1)."""
    path = shutil.which("chromium")
    if path is None:
        missing("Debian's chromium is not installed (.ci/install-console-checkers installs it)")
        raise AssertionError("unreachable")
    if vendor_missing():
        missing(
            "uPlot is not in console/static/vendor/ (python3 tools/packaging/console_vendor.py)"
        )
    return path


@asynccontextmanager
async def launch() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium(),
            # as root (CI, containers) chromium refuses to start inside its own sandbox
            args=["--no-sandbox"] if os.geteuid() == 0 else [],
        )
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Watched:
    """A page whose console errors and failed requests are collected; `expected` holds the
    (status, path regex) answers a test provokes on purpose."""

    page: Page
    problems: list[str] = field(default_factory=list)
    expected: list[tuple[int, str]] = field(default_factory=list)

    def expect(self, status: int, path: str) -> None:
        self.expected.append((status, path))

    def _response(self, response: Response) -> None:
        if response.status < 400:
            return
        path = response.url.split("://", 1)[-1].split("/", 1)[-1]
        if any(s == response.status and re.search(p, "/" + path) for s, p in self.expected):
            return
        self.problems.append(f"HTTP {response.status} {response.url}")

    def _failed(self, request: Request) -> None:
        failure = request.failure or ""
        # leaving a page cancels its streams and pending fetches: not a failure of the console
        if "ERR_ABORTED" not in failure:
            self.problems.append(f"request failed {request.url}: {failure}")

    def _console(self, kind: str, text: str) -> None:
        if kind != "error":
            return
        # the browser logs every 4xx a test provokes on purpose as a console error too
        if "Failed to load resource" in text and self.expected:
            return
        self.problems.append(f"console {kind}: {text}")


@asynccontextmanager
async def watched_page(
    browser: Browser, width: int = 1280, height: int = 900
) -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    watched = Watched(page)
    page.on("response", watched._response)
    page.on("requestfailed", watched._failed)
    page.on("console", lambda message: watched._console(message.type, message.text))
    page.on("pageerror", lambda error: watched.problems.append(f"page error: {error}"))
    try:
        yield watched
    finally:
        await context.close()
    assert watched.problems == [], "\n".join(watched.problems)
