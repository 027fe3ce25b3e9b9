"""`fleetpulse logs --follow` across a collector restart: real exporter, collector and
follower processes; the follower must carry on, not die with a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.servers import free_port
from tests.test_logs_e2e import TOKEN, lines_of, spawn, stop, unauthenticated_scrape, wait_for


def scrape_with_a_wrong_token(url: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": "Bearer not-the-token"})
    try:
        urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def wait_in_file(path: Path, pattern: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if re.search(pattern, path.read_text(), re.MULTILINE):
            return
        time.sleep(0.1)
    pytest.fail(f"no line matching {pattern!r} within {seconds}s in:\n{path.read_text()}")


def wait_for_host(api: str, host: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{api}/api/v1/hosts", timeout=5) as response:
            if host.encode() in response.read():
                return
        time.sleep(0.2)
    raise AssertionError(f"{host} never showed in {api}/api/v1/hosts")


def test_logs_follow_carries_on_after_the_collector_restarts(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    exporter_port, api_port = free_port(), free_port()
    metrics = f"http://127.0.0.1:{exporter_port}/metrics"
    api = f"http://127.0.0.1:{api_port}"
    (tmp_path / "fleetpulse.yaml").write_text(
        "scrape:\n  interval: 1s\n  timeout: 1s\n  targets:\n"
        f"    - {{url: '{metrics}', host: agent-1, bearer_token_file: token}}\n"
        f"exporter: {{listen: '127.0.0.1:{exporter_port}', interval: 1s,"
        " auth: {bearer_token_file: token}, containers: {enabled: false}}\n"
        f"api: {{listen: '127.0.0.1:{api_port}'}}\n"
    )
    collector_args = ("collector", "-c", "fleetpulse.yaml", "--data-dir", "data")
    exporter = spawn("exporter", "-c", "fleetpulse.yaml", cwd=tmp_path)
    collector = spawn(*collector_args, cwd=tmp_path)
    follower = None
    complaints = tmp_path / "follower.stderr"
    try:
        wait_for(lines_of(collector.stdout), r"api\s+http://", 30)
        wait_for_host(api, "agent-1")
        follow_args = ("logs", "agent-1", "--follow", "--since", "1m", "--api", api)
        # stderr to a file: every line of it is checked for a traceback at the end
        with complaints.open("w") as stderr:
            follower = subprocess.Popen(
                [sys.executable, "-m", "fleetpulse", *follow_args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        followed = lines_of(follower.stdout)
        assert unauthenticated_scrape(metrics) == 401
        wait_for(followed, r"auth failed .*reason=missing credentials", 15)

        stop(collector)
        wait_in_file(complaints, r"^connection lost, retrying", 15)
        collector = spawn(*collector_args, cwd=tmp_path)
        wait_for(lines_of(collector.stdout), r"api\s+http://", 30)
        assert scrape_with_a_wrong_token(metrics) == 401
        wait_for(followed, r"auth failed .*reason=wrong credentials", 30)
        wait_in_file(complaints, r"^reconnected$", 15)
        assert follower.poll() is None, "the follower stopped"
    finally:
        if follower is not None:
            follower.kill()
            follower.communicate()
        stop(collector)
        stop(exporter)
    errors = complaints.read_text()
    assert "Traceback" not in errors, errors
