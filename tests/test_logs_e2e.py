"""Agent logs end to end: real exporter, collector and API processes, and `fleetpulse logs`."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import pytest

from tests.support.servers import free_port

TOKEN = "exporter-secret-token"


def spawn(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fleetpulse", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def lines_of(stream: IO[str] | None) -> queue.Queue[str]:
    """Read a pipe in a thread so the test can wait for lines with a deadline."""
    assert stream is not None, "spawn() pipes stdout"
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            out.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return out


def wait_for(lines: queue.Queue[str], pattern: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        seen.append(line)
        if re.search(pattern, line):
            return line
    pytest.fail(f"no line matching {pattern!r} within {seconds}s; saw:\n{''.join(seen)}")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


def unauthenticated_scrape(url: str) -> int:
    try:
        urllib.request.urlopen(url, timeout=5)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def test_an_auth_failure_on_the_exporter_reaches_logs_follow(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    exporter_port = free_port()
    (tmp_path / "fleetpulse.yaml").write_text(
        "scrape: {interval: 1s, timeout: 1s}\n"
        f"exporter: {{listen: '127.0.0.1:{exporter_port}', interval: 1s,"
        " auth: {bearer_token_file: token}, containers: {enabled: false}}\n"
        "api: {listen: '127.0.0.1:0'}\nalerting: {rules: []}\n"
    )
    up = spawn("up", "-c", "fleetpulse.yaml", "--data-dir", "data", cwd=tmp_path)
    follower = None
    try:
        banner = lines_of(up.stdout)
        found = re.search(r"api\s+http://([\d.]+:\d+)", wait_for(banner, r"api\s+http://", 30))
        assert found
        api = "http://" + found.group(1)
        host = __import__("socket").gethostname()
        # wait until the host is known (its first scrape with the token succeeded)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{api}/api/v1/hosts", timeout=5) as response:
                if host.encode() in response.read():
                    break
            time.sleep(0.2)
        follower = spawn("logs", host, "--follow", "--since", "1m", "--api", api, cwd=tmp_path)
        followed = lines_of(follower.stdout)
        assert unauthenticated_scrape(f"http://127.0.0.1:{exporter_port}/metrics") == 401
        started = time.monotonic()
        line = wait_for(followed, r"auth failed .*reason=missing credentials", 15)
        print(
            f"auth failure reached `fleetpulse logs --follow` in {time.monotonic() - started:.2f}s"
        )
        assert "WARNING" in line
        assert TOKEN not in line
    finally:
        if follower is not None:
            follower.kill()
            follower.communicate()
        err = stop(up)
    assert TOKEN not in err


def test_lines_logged_while_the_collector_is_down_are_stored_when_it_returns(
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text(TOKEN)
    exporter_port = free_port()
    (tmp_path / "fleetpulse.yaml").write_text(
        "scrape:\n  interval: 1s\n  timeout: 1s\n  targets:\n"
        f"    - {{url: 'http://127.0.0.1:{exporter_port}/metrics', host: agent-1,"
        " bearer_token_file: token}\n"
        f"exporter: {{listen: '127.0.0.1:{exporter_port}', interval: 1s,"
        " auth: {bearer_token_file: token}, containers: {enabled: false}}\n"
        "api: {listen: '127.0.0.1:0'}\n"
    )
    exporter = spawn("exporter", "-c", "fleetpulse.yaml", cwd=tmp_path)
    collector = None
    try:
        collector = spawn("collector", "-c", "fleetpulse.yaml", "--data-dir", "data", cwd=tmp_path)
        banner = lines_of(collector.stdout)
        wait_for(banner, r"api\s+http://", 30)
        stop(collector)
        # three auth failures while no collector runs: they wait in the exporter's buffer
        for _ in range(3):
            assert unauthenticated_scrape(f"http://127.0.0.1:{exporter_port}/metrics") == 401
        collector = spawn("collector", "-c", "fleetpulse.yaml", "--data-dir", "data", cwd=tmp_path)
        api_line = wait_for(lines_of(collector.stdout), r"api\s+http://", 30)
        found = re.search(r"http://([\d.]+:\d+)", api_line)
        assert found, api_line
        api = "http://" + found.group(1)
        deadline = time.monotonic() + 30
        count = 0
        while time.monotonic() < deadline:
            logs = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "fleetpulse",
                    "logs",
                    "agent-1",
                    "--grep",
                    "auth failed",
                    "--api",
                    api,
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            count = logs.stdout.count("auth failed")
            if count >= 3:
                break
            time.sleep(0.5)
        assert count == 3, logs.stdout + logs.stderr
    finally:
        if collector is not None:
            stop(collector)
        stop(exporter)
