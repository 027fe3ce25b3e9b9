"""`fleetpulse up` end to end: a real subprocess on free ports and a temporary data dir."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest


def fetch_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        doc: dict[str, Any] = json.loads(response.read())
    return doc


def start_up(tmp_path: Path, config_text: str) -> tuple[subprocess.Popen[str], str]:
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(config_text)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleetpulse",
            "up",
            "-c",
            str(config),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    banner = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        banner.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    text = "".join(banner)
    match = re.search(r"api\s+http://([\d.]+:\d+)/api/v1/hosts", text)
    if match is None:
        proc.kill()
        pytest.fail(
            f"no banner from fleetpulse up:\n{text}\n{proc.stderr.read() if proc.stderr else ''}"
        )
    return proc, f"http://{match.group(1)}"


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"fleetpulse up did not stop on SIGINT:\n{err}")
    return proc.returncode, err


# no alerting.rules and no rules/ beside it: the built-in rules and their thresholds
CONFIG = """
scrape: {interval: 1s, timeout: 1s}
exporter: {listen: "127.0.0.1:0", interval: 1s}
api: {listen: "127.0.0.1:0"}
"""


def test_up_serves_the_local_hosts_cpu_history_through_the_api(tmp_path: Path) -> None:
    proc, api = start_up(tmp_path, CONFIG)
    try:
        deadline = time.monotonic() + 30
        hosts: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            hosts = fetch_json(f"{api}/api/v1/hosts")["hosts"]
            if hosts and hosts[0]["cpu"] is not None and hosts[0]["disk"] is not None:
                break
            time.sleep(0.2)
        (host,) = hosts
        assert host["up"] is True
        assert 0 <= host["cpu"] <= 100 and 0 <= host["memory"] <= 100 and 0 <= host["disk"] <= 100
        assert host["thresholds"]["cpu"] == {"warning": 70, "critical": 85}
        name = host["host"]
        deadline = time.monotonic() + 30
        points: list[list[float]] = []
        while time.monotonic() < deadline and len(points) < 2:
            history = fetch_json(
                f"{api}/api/v1/hosts/{name}/metrics/history?metric=host_cpu_usage_percent&start=-5m"
            )
            points = history["series"][0]["points"] if history["series"] else []
            time.sleep(0.2)
        assert history["tier"] == "raw"
        assert len(points) >= 2 and points[0][0] < points[1][0]
        assert all(0 <= value <= 100 for _, value in points)
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "Traceback" not in err
    assert (tmp_path / "data" / "metrics.db").is_file()


def test_up_refuses_a_broken_config_with_one_line_per_problem(tmp_path: Path) -> None:
    config = tmp_path / "fleetpulse.yaml"
    config.write_text("scrape:\n  interval: 15s\n  intervall: 30s\n")
    done = subprocess.run(
        [sys.executable, "-m", "fleetpulse", "up", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {config}:3: scrape.intervall: unknown key; expected one of: body_budget, "
        "body_size_limit, file_sd, file_sd_refresh, interval, label_limit, "
        "label_value_length_limit, sample_limit, targets, timeout"
    ]
    assert not (tmp_path / "fleetpulse-data").exists()
