"""`fleetpulse status` and `fleetpulse history` against a real API on loopback."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import pty
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerting.events import transition_event
from alerting.state import FIRING, INACTIVE, PENDING
from collector.storage.sqlite import SqliteStorage
from fleetpulse.app.statusview import StatusData, render_status, sparkline
from fleetpulse.core.samples import Sample, make_labels
from fleetpulse.core.storage import ALERT_EVENTS
from fleetpulse.core.thresholds import Level, Thresholds
from fleetpulse.core.timeutil import now_ms
from tests.support.api import ServeApi

THRESHOLDS = Thresholds(
    defaults=(("cpu", Level(70, 85)), ("memory", Level(70, 85)), ("disk", Level(70, 85))),
    hosts=(("db-*", (("disk", Level(60, 75)),)),),
)
TOKEN = "status-token"


def labels(host: str, **extra: str) -> tuple[tuple[str, str], ...]:
    return make_labels({"host": host, "job": "fleetpulse", **extra})


@pytest.fixture
async def api_url(store: SqliteStorage, serve_api: ServeApi) -> str:
    t = now_ms()
    samples = []
    for host, cpu, disk in (("web-1", 12.5, 40.0), ("db-1", 90.0, 65.0)):
        for i in range(30):
            ts = t - (29 - i) * 120_000
            samples += [
                Sample("up", labels(host), 1.0, ts),
                Sample("host_cpu_usage_percent", labels(host), cpu * i / 29, ts),
            ]
        samples += [
            Sample("host_memory_usage_percent", labels(host), 50.0, t),
            Sample("host_disk_usage_percent", labels(host, mountpoint="/"), disk, t),
        ]
    for name, up in (("game", 1.0), ("db", 0.0)):
        c = labels("web-1", container=name)
        samples += [
            Sample("container_up", c, up, t),
            Sample("container_cpu_usage_percent", c, 150.0 * up, t),
            Sample("container_memory_usage_bytes", c, 256 * 2**20, t),
            Sample("container_restarts_total", c, 3.0, t),
        ]
    await store.write(samples)
    alert = make_labels({"alertname": "HostCpuHigh", "host": "db-1", "job": "fleetpulse"})
    await store.write_events(
        ALERT_EVENTS,
        [
            transition_event(
                make_labels({**dict(alert), "severity": "critical"}),
                t - 1000,
                PENDING,
                FIRING,
                90.0,
                85.0,
                "CPU high",
                t - 400_000,
            ),
            transition_event(
                make_labels({**dict(alert), "severity": "warning", "host": "web-1"}),
                t - 1000,
                INACTIVE,
                PENDING,
                75.0,
                70.0,
                "CPU high",
                t - 1000,
            ),
        ],
    )
    return await serve_api(lambda: THRESHOLDS, token=TOKEN, scrape_interval=120.0)


def env() -> dict[str, str]:
    return {**os.environ, "FLEETPULSE_API_TOKEN": TOKEN}


async def run_cli(
    *args: str, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "fleetpulse", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ or env(),
    )


def run_in_pty(args: list[str], until: bytes | None = None) -> str:
    """Run the CLI with a pseudo-terminal as stdout, as a person at a terminal would; with
    `until`, read until that text has appeared twice, then press Ctrl-C."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetpulse", *args],
        stdout=child,
        stderr=subprocess.DEVNULL,
        env=env(),
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
        if until is not None and b"".join(chunks).count(until) >= 2 and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            until = None
    proc.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode()


async def test_status_as_plain_text_lists_hosts_against_their_thresholds(api_url: str) -> None:
    done = await run_cli("status", "--api", api_url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "HOST",
        "STATE",
        "LAST",
        "SEEN",
        "CPU",
        "MEMORY",
        "DISK",
        "CPU",
        "1H",
        "FIRING",
    ]
    assert "\x1b[" not in done.stdout  # no colour codes when stdout is not a terminal
    db = next(line for line in lines if line.startswith("db-1*"))
    assert "90.0%" in db and "65.0%" in db and " up " in db
    assert any(ch in db for ch in "▁▂▃▄▅▆▇█")
    assert db.split()[-1] == "1"  # firing; web-1's alert is only pending
    web = next(line for line in lines if line.startswith("web-1"))
    assert web.split()[-1] == "0"
    assert "* thresholds customised" in done.stdout


async def test_status_in_a_terminal_colours_by_threshold(api_url: str) -> None:
    text = await asyncio.to_thread(run_in_pty, ["status", "--api", api_url])
    db = next(line for line in text.splitlines() if "db-1" in line)
    assert "\x1b[31m90.0%" in db  # cpu above critical 85: red
    assert "\x1b[33m65.0%" in db  # disk above db-*'s warning 60: yellow
    web = next(line for line in text.splitlines() if "web-1" in line)
    assert "\x1b[32m12.5%" in web  # below warning: green


async def test_status_watch_redraws_in_place_until_ctrl_c(api_url: str) -> None:
    clear = b"\x1b[H\x1b[2J"
    text = await asyncio.to_thread(run_in_pty, ["status", "--api", api_url, "--watch", "1"], clear)
    assert text.count("\x1b[H\x1b[2J") >= 2
    assert text.count("web-1") >= 2
    assert "Traceback" not in text


async def test_status_for_one_host_lists_its_containers(api_url: str) -> None:
    done = await run_cli("status", "--api", api_url, "--host", "web-1")
    assert done.returncode == 0, done.stderr
    after = done.stdout.split("Containers on web-1", 1)[1]
    game = next(line for line in after.splitlines() if line.startswith("game"))
    assert game.split()[:4] == ["game", "running", "150.0%", "256"]
    assert (
        next(line for line in after.splitlines() if line.startswith("db")).split()[1] == "stopped"
    )


async def test_status_errors_say_what_to_do(api_url: str, tmp_path: Path) -> None:
    done = await run_cli("status", "--api", api_url, "--host", "nobody")
    assert done.returncode == 1 and "unknown host 'nobody'; known hosts: db-1, web-1" in done.stderr
    done = await run_cli(
        "status", "--api", api_url, environ={**os.environ, "FLEETPULSE_API_TOKEN": "x"}
    )
    assert done.returncode == 1 and "refused the token" in done.stderr
    done = await run_cli("status", "--api", "http://127.0.0.1:9")
    assert done.returncode == 1 and "cannot reach the FleetPulse API" in done.stderr
    assert "Traceback" not in done.stderr


async def test_history_csv_matches_the_apis_json(api_url: str) -> None:
    as_json = await run_cli(
        "history",
        "web-1",
        "host_cpu_usage_percent",
        "--since",
        "2h",
        "--format",
        "json",
        "--api",
        api_url,
    )
    as_csv = await run_cli(
        "history",
        "web-1",
        "host_cpu_usage_percent",
        "--since",
        "2h",
        "--format",
        "csv",
        "--api",
        api_url,
    )
    assert as_json.returncode == 0 and as_csv.returncode == 0, as_csv.stderr
    points = json.loads(as_json.stdout)["series"][0]["points"]
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == len(points) == 30
    assert [float(r["value"]) for r in rows] == [p[1] for p in points]
    assert {r["host"] for r in rows} == {"web-1"}
    table = await run_cli(
        "history",
        "web-1",
        "host_cpu_usage_percent",
        "--since",
        "2h",
        "--step",
        "10m",
        "--api",
        api_url,
    )
    assert table.returncode == 0 and table.stdout.splitlines()[0].split() == ["TIME", "VALUE"]
    assert "from the raw tier" in table.stdout


async def test_history_refuses_a_bad_duration_before_asking(api_url: str) -> None:
    done = await run_cli(
        "history", "web-1", "host_cpu_usage_percent", "--since", "yesterday", "--api", api_url
    )
    assert done.returncode == 2
    assert "argument --since: expected a duration ago like 24h" in done.stderr


def test_render_status_marks_down_hosts_and_missing_values() -> None:
    data = StatusData(
        hosts=[
            {
                "host": "h",
                "up": False,
                "last_seen": None,
                "cpu": None,
                "memory": None,
                "disk": None,
                "thresholds": {},
                "customized": False,
            }
        ],
        sparklines={},
        alerts=None,
        containers=None,
    )
    text = render_status(data, None, colour=False, now=datetime.now(UTC))
    assert text.splitlines()[1].split() == ["h", "DOWN", "never", "-", "-", "-", "-"]


def test_sparkline_uses_a_fixed_percent_scale() -> None:
    assert sparkline([0, 50, 100]) == "▁▅█"
    assert sparkline([]) == ""
