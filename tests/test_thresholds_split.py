"""The split deployment sees the thresholds set through the API: `fleetpulse collector` and
`fleetpulse alerting` as separate processes, each with its own data dir, over one SQLite
file. An override PUT to the collector's API is what the alert engine fires on (delivered to
a webhook recorder) and what the collector publishes as `fleetpulse_threshold` series."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.alerting.recorders import HttpRecorder, http_recorder
from tests.console.harness import Usage, serve_fleet
from tests.support.poll import eventually

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
        for: 1s
        annotations:
          summary: "Disk {{ labels.mountpoint }} on {{ labels.host }} over {{ threshold }}%"
"""
THRESHOLDS = "thresholds:\n  defaults:\n    disk: {warning: 70, critical: 85}\n"


async def read_lines(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode())


@asynccontextmanager
async def command(work: Path, *args: str) -> AsyncIterator[list[str]]:
    """`fleetpulse ARGS` until the block ends; yields the lines it prints to stdout."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fleetpulse", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=work,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    out: list[str] = []
    err: list[str] = []
    readers = [
        asyncio.create_task(read_lines(proc.stdout, out)),
        asyncio.create_task(read_lines(proc.stderr, err)),
    ]
    try:
        yield out
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            await proc.wait()
            await asyncio.gather(*readers)
    assert proc.returncode == 0, "".join(err)
    assert "Traceback" not in "".join(err), "".join(err)


async def request(method: str, url: str, body: object = None) -> Any:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.request(method, url, json=body) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def test_the_alert_engine_of_a_split_deployment_uses_the_override_set_through_the_api(
    tmp_path: Path,
) -> None:
    async with http_recorder() as webhook:
        await split_deployment(tmp_path, webhook)


async def split_deployment(tmp_path: Path, webhook: HttpRecorder) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "disk.yaml").write_text(RULE)
    (rules / "thresholds.yaml").write_text(THRESHOLDS)
    shared = json.dumps(str(tmp_path / "shared" / "metrics.db"))
    hosts = {"web-1": Usage(disk={"/": 40}), "web-2": Usage(disk={"/": 40})}
    async with serve_fleet(hosts) as fleet:
        (tmp_path / "collector.yaml").write_text(
            f"scrape:\n  interval: 1s\n  timeout: 1s\n  targets:\n{fleet.targets_yaml()}"
            "api: {listen: '127.0.0.1:0'}\n"
            f"storage: {{sqlite: {{path: {shared}}}}}\n"
            "alerting: {rules: [rules/]}\n"
        )
        (tmp_path / "alerting.yaml").write_text(
            f"storage: {{sqlite: {{path: {shared}}}}}\n"
            "alerting:\n  rules: [rules/]\n  interval: 1s\n  listen: 127.0.0.1:0\n"
            f"  channels: {{hook: ['json://{webhook.base.removeprefix('http://')}/hook']}}\n"
            "  default_channels: [hook]\n"
        )
        collector_args = ("collector", "-c", "collector.yaml", "--data-dir", "collector-data")
        alerting_args = ("alerting", "-c", "alerting.yaml", "--data-dir", "alerting-data")
        async with command(tmp_path, *collector_args) as out:
            banner = await eventually(
                lambda: "".join(out) if "Press Ctrl-C" in "".join(out) else None,
                "the collector's banner",
                within=60,
            )
            match = re.search(r"api\s+(http://[\d.]+:\d+)/api/v1/hosts", banner)
            assert match, banner
            api = match.group(1)

            async def scraped() -> bool:
                found = (await request("GET", f"{api}/api/v1/hosts"))["hosts"]
                return sorted(h["host"] for h in found if h["disk"] is not None) == list(hosts)

            await eventually(scraped, "both hosts' disk usage in the API", within=30)
            async with command(tmp_path, *alerting_args) as alerting_out:
                await eventually(lambda: alerting_out, "the alert engine's banner", within=60)
                put = {"disk": {"warning": 30, "critical": 85}}
                await request("PUT", f"{api}/api/v1/hosts/web-1/thresholds", put)

                def fired() -> bool:
                    return any(
                        "DiskOverThreshold" in r.text and "web-1" in r.text
                        for r in webhook.received
                    )

                await eventually(fired, "the disk alert of web-1 at the webhook", within=30)
                assert not any("web-2" in r.text for r in webhook.received)

            async def published() -> bool:
                answer = await request(
                    "GET",
                    f"{api}/api/v1/hosts/web-1/metrics/history"
                    "?metric=fleetpulse_threshold&start=-1m&aggregate=last",
                )
                levels = {
                    (s["labels"]["key"], s["labels"]["level"]): s["points"][-1][1]
                    for s in answer["series"]
                }
                return levels.get(("disk", "warning")) == 30

            await eventually(published, "the override in the fleetpulse_threshold series")
