"""Debian's real prometheus-node-exporter as a target of a real `fleetpulse collector`: scraped
with up = 1, never asked for /logs (it is not a FleetPulse exporter), and no log spam."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.collector.test_main import banner, get_json, start
from tests.support.require import missing
from tests.support.servers import free_port, serve_app

NODE_EXPORTER = "prometheus-node-exporter"


@asynccontextmanager
async def node_exporter() -> AsyncIterator[str]:
    """A real node_exporter with two collectors on a free loopback port; yields its base URL."""
    binary = shutil.which(NODE_EXPORTER) or shutil.which(NODE_EXPORTER, path="/usr/bin")
    if binary is None:
        missing(f"{NODE_EXPORTER} is not installed (apt-get install {NODE_EXPORTER})")
    assert binary is not None
    base = f"http://127.0.0.1:{free_port()}"
    proc = await asyncio.create_subprocess_exec(
        binary,
        f"--web.listen-address={base.removeprefix('http://')}",
        "--collector.disable-defaults",
        "--collector.cpu",
        "--collector.meminfo",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session, asyncio.timeout(30):
            while True:
                try:
                    async with session.get(f"{base}/metrics") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    assert proc.returncode is None, f"{NODE_EXPORTER} exited: {proc.returncode}"
                await asyncio.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        async with asyncio.timeout(30):
            await proc.wait()


def recording_proxy(upstream: str, requests: Counter[str]) -> web.Application:
    """Forwards every GET to `upstream` as it is and counts the paths asked for: node_exporter
    itself cannot tell who asked it for what."""

    async def forward(request: web.Request) -> web.Response:
        requests[request.path] += 1
        headers = {"Accept": request.headers.get("Accept", "*/*")}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{upstream}{request.path_qs}", headers=headers) as answer,
        ):
            body = await answer.read()
            return web.Response(
                body=body,
                status=answer.status,
                headers={"Content-Type": answer.headers.get("Content-Type", "text/plain")},
            )

    app = web.Application()
    app.router.add_get("/{path:.*}", forward)
    return app


async def test_node_exporter_is_scraped_up_and_never_asked_for_logs(tmp_path: Path) -> None:
    requests: Counter[str] = Counter()
    async with node_exporter() as upstream, serve_app(recording_proxy(upstream, requests)) as base:
        config = tmp_path / "fleetpulse.yaml"
        config.write_text(
            "scrape:\n"
            "  interval: 1s\n"
            "  timeout: 1s\n"
            f"  targets: [{{url: '{base}/metrics', host: node}}]\n"
            "api: {listen: '127.0.0.1:0'}\n"
        )
        proc = await start(tmp_path, "-c", str(config), "--data-dir", str(tmp_path / "data"))
        try:
            text = await banner(proc)
            match = re.search(r"api\s+(http://[\d.]+:\d+)/api/v1/hosts", text)
            assert match, text
            hosts: list[dict[str, Any]] = []
            async with asyncio.timeout(60):
                # several good scrapes: each one used to be followed by a /logs request
                while not (hosts and hosts[0]["up"] and requests["/metrics"] >= 5):
                    await asyncio.sleep(0.2)
                    hosts = (await get_json(f"{match.group(1)}/api/v1/hosts"))["hosts"]
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                _, err = await proc.communicate()
    log = err.decode()
    assert proc.returncode == 0, log
    assert [(h["host"], h["up"]) for h in hosts] == [("node", True)]
    assert set(requests) == {"/metrics"}, requests
    assert "log pull" not in log
    assert not [line for line in log.splitlines() if " WARNING " in line or " ERROR " in line]
