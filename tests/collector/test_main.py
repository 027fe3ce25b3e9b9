"""`fleetpulse collector` as a real subprocess: banner, scraping into the API, clean stop."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.influx_recorder import TOKEN, InfluxRecorder
from tests.support.servers import free_port, serve, static_exposition


async def start(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleetpulse",
        "collector",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def banner(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    lines = []
    async with asyncio.timeout(60):
        while line := (await proc.stdout.readline()).decode():
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
    return "".join(lines)


async def get_json(url: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response,
    ):
        doc: dict[str, Any] = await response.json()
        return doc


async def test_collector_command_scrapes_serves_the_api_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    async with serve({"/metrics": static_exposition("host_cpu_usage_percent 12.5\n")}) as base:
        sd = tmp_path / "sd.yaml"
        sd.write_text(f"- url: {base}/metrics\n  host: from-file\n")
        config = tmp_path / "fleetpulse.yaml"
        config.write_text(
            "scrape:\n"
            "  interval: 1s\n"
            "  timeout: 1s\n"
            f"  targets: [{{url: '{base}/metrics', host: static-1, bearer_token: sekrit-123}}]\n"
            "  file_sd: [sd.yaml]\n"
            "api: {listen: '127.0.0.1:0'}\n"
        )
        proc = await start(tmp_path, "-c", str(config), "--data-dir", str(tmp_path / "data"))
        try:
            text = await banner(proc)
            assert "FleetPulse collector" in text, text
            assert re.search(r"targets\s+2 \(1 static \+ 1 from file_sd\), every 1s", text), text
            match = re.search(r"api\s+(http://[\d.]+:\d+)/api/v1/hosts", text)
            assert match, text
            api = match.group(1)
            hosts: list[dict[str, Any]] = []
            for _ in range(300):
                hosts = (await get_json(f"{api}/api/v1/hosts"))["hosts"]
                if len(hosts) == 2 and all(h["up"] and h["cpu"] == 12.5 for h in hosts):
                    break
                await asyncio.sleep(0.1)
            assert sorted(h["host"] for h in hosts) == ["from-file", "static-1"]
            assert all(h["up"] and h["cpu"] == 12.5 for h in hosts), hosts
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "Stopping" in out.decode()
    assert "Traceback" not in err.decode()
    assert "sekrit-123" not in out.decode() + err.decode()
    assert (tmp_path / "data" / "metrics.db").exists()


async def test_shard_option_is_shown_in_the_banner(tmp_path: Path) -> None:
    config = tmp_path / "fleetpulse.yaml"
    config.write_text("api: {listen: '127.0.0.1:0'}\n")
    proc = await start(tmp_path, "-c", str(config), "--data-dir", "d", "--shard", "1/3")
    text = await banner(proc)
    proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(60):
        await proc.communicate()
    assert "0 (0 static + 0 from file_sd, shard 1/3)" in text
    assert proc.returncode == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--shard", "3/3"], 2, "expected i/n with 0 <= i < n"),
        (["-c", "bad.yaml"], 1, "bad.yaml:2: scrape.targets[0].url: expected an http://"),
    ],
)
async def test_bad_options_and_configs_exit_with_a_clear_error(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    (tmp_path / "bad.yaml").write_text("scrape:\n  targets: [{url: 'ftp://x'}]\n")
    proc = await start(tmp_path, *args)
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    assert proc.returncode == code
    assert message in err.decode()
    assert not (tmp_path / "fleetpulse-data").exists()


def influx_config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(
        "storage:\n"
        "  backend: influxdb\n"
        f"  influxdb: {{url: '{url}', org: fleetpulse, token: {TOKEN}, bucket: fleetpulse, "
        "timeout: 5s}\n"
        "api: {listen: '127.0.0.1:0'}\n"
    )
    return config


async def stop(proc: asyncio.subprocess.Process) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    return out.decode(), err.decode()


async def test_collector_on_influxdb_sets_up_org_buckets_and_tasks_at_start(
    tmp_path: Path, recorder: InfluxRecorder
) -> None:
    proc = await start(tmp_path, "-c", str(influx_config(tmp_path, recorder.url)))
    text = await banner(proc)
    _, err = await stop(proc)
    assert "influx    setup ok (6 created or updated)" in text, text + err
    assert sorted(b["name"] for b in recorder.buckets.values()) == [
        "fleetpulse",
        "fleetpulse_1d",
        "fleetpulse_1h",
    ]
    assert len(recorder.tasks) == 2
    assert proc.returncode == 0, err


async def test_collector_keeps_running_when_influx_setup_fails_at_start(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = await start(tmp_path, "-c", str(influx_config(tmp_path, url)))
    text = await banner(proc)
    assert "influx    setup FAILED" in text, text
    assert proc.returncode is None  # still running: the spool absorbs the outage
    _, err = await stop(proc)
    assert proc.returncode == 0, err
    assert "influx setup failed at start" in err
    assert "Traceback" not in err
    assert TOKEN not in text + err


async def test_collector_api_follows_thresholds_yaml_and_keeps_the_last_good_after_a_mistake(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    thresholds = rules / "thresholds.yaml"
    thresholds.write_text("thresholds:\n  defaults:\n    cpu: {warning: 70, critical: 85}\n")
    async with serve({"/metrics": static_exposition("host_cpu_usage_percent 12.5\n")}) as base:
        config = tmp_path / "fleetpulse.yaml"
        config.write_text(
            "scrape:\n  interval: 1s\n  timeout: 1s\n"
            f"  targets: [{{url: '{base}/metrics', host: web-1}}]\n"
            "api: {listen: '127.0.0.1:0'}\n"
            f"alerting: {{rules: ['{rules}']}}\n"
        )
        proc = await start(tmp_path, "-c", str(config), "--data-dir", str(tmp_path / "data"))
        assert proc.stderr is not None
        err_lines: list[str] = []
        refused = asyncio.Event()

        async def read_stderr() -> None:
            assert proc.stderr is not None
            while line := (await proc.stderr.readline()).decode():
                err_lines.append(line)
                if "thresholds reload refused" in line:
                    refused.set()

        reader = asyncio.create_task(read_stderr())

        async def cpu_levels(customized: bool) -> dict[str, float]:
            """The API's cpu levels for web-1 once its `customized` flag is as given."""
            async with asyncio.timeout(30):
                while True:
                    hosts = (await get_json(f"{api}/api/v1/hosts"))["hosts"]
                    if hosts and hosts[0]["customized"] is customized:
                        levels: dict[str, float] = hosts[0]["thresholds"]["cpu"]
                        return levels
                    await asyncio.sleep(0.1)

        try:
            match = re.search(r"api\s+(http://[\d.]+:\d+)/api/v1/hosts", await banner(proc))
            assert match
            api = match.group(1)
            assert await cpu_levels(False) == {"warning": 70, "critical": 85}
            thresholds.write_text(
                "thresholds:\n"
                "  defaults:\n"
                "    cpu: {warning: 60, critical: 85}\n"
                "  hosts:\n"
                "    'web-*': {cpu: {critical: 95}}\n"
            )
            assert await cpu_levels(True) == {"warning": 60, "critical": 95}
            thresholds.write_text("thresholds:\n  defaults:\n    cpu: {warning: high}\n")
            async with asyncio.timeout(30):
                await refused.wait()
            await asyncio.sleep(3)  # a few more looks at the broken file: none may log again
            assert await cpu_levels(True) == {"warning": 60, "critical": 95}
        finally:
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                await proc.wait()
                await reader
    problems = [
        line.split(" problem=", 1)[1] for line in err_lines if "thresholds reload refused" in line
    ]
    # each problem of the broken edit once, with its file:line
    assert problems and len(problems) == len(set(problems)), problems
    assert all(p.startswith(f"{thresholds}:3: ") for p in problems), problems
    assert proc.returncode == 0, "".join(err_lines)
