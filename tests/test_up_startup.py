"""`fleetpulse up` meeting a busy port or a host without Docker: what it says, and that the
advice works."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.servers import free_port
from tests.test_up import start_up, stop

CONFIG = """
scrape: {interval: 1s, timeout: 1s}
api: {listen: "127.0.0.1:0"}
alerting: {rules: []}
"""


def test_up_on_a_busy_exporter_port_exits_1_without_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "fleetpulse.yaml"
        config.write_text(CONFIG + f"exporter: {{listen: '127.0.0.1:{port}'}}\n")
        done = subprocess.run(
            [sys.executable, "-m", "fleetpulse", "up", "-c", str(config), "--data-dir", "data"],
            capture_output=True,
            text=True,
            timeout=20,
            cwd=tmp_path,
            # no Docker engine: the containers source fails, as on many first runs
            env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path / 'no-docker.sock'}"},
        )
    assert done.returncode == 1, done.stderr
    assert (
        f"error: cannot listen on 127.0.0.1:{port}: address already in use; "
        "pick another address or stop the process using it"
    ) in done.stderr
    assert "Traceback" not in done.stderr and "Future exception" not in done.stderr


def exposition_once(url: str, wanted: str) -> str:
    """The local exporter's /metrics once it contains `wanted` (30 s at most)."""
    deadline = time.monotonic() + 30
    text = ""
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=5) as response:
            body: bytes = response.read()
        text = body.decode()
        if wanted in text:
            return text
        time.sleep(0.2)
    pytest.fail(f"no {wanted!r} in the exporter's /metrics:\n{text}")


def test_up_without_docker_hints_at_a_config_key_that_turns_containers_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    config = CONFIG + f"exporter: {{listen: '127.0.0.1:{port}', interval: 1s}}\n"
    (tmp_path / "first").mkdir()
    proc, _ = start_up(tmp_path / "first", config)
    try:
        exposition_once(metrics, 'exporter_collect_errors_total{source="containers"} 1')
    finally:
        code, err = stop(proc)
    assert code == 0, err
    hint = re.search(r"no Docker engine at .*\(turn them off with (.+)\)$", err, re.MULTILINE)
    assert hint is not None, err
    assert hint.group(1) == "exporter.containers.enabled: false in the config"

    # follow the advice, and the warning is gone
    followed = CONFIG + (
        f"exporter: {{listen: '127.0.0.1:{port}', interval: 1s, containers: {{enabled: false}}}}\n"
    )
    (tmp_path / "second").mkdir()
    proc, _ = start_up(tmp_path / "second", followed)
    try:
        exposition = exposition_once(metrics, 'exporter_collect_duration_seconds{source="host"}')
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert 'source="containers"' not in exposition
    assert "Docker" not in err
