"""The exporter judged by Prometheus' own tools: promtool's linter and a real Prometheus scrape.

Both come from Debian (`prometheus`, which ships `promtool` too); `.ci/run` installs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_engine import DockerSandbox
from tests.support.require import missing
from tests.support.servers import free_port

# promtool lints an exposition with containers of the private engine; Prometheus and promtool
# are Debian's, so the whole module belongs with the Linux engine tests
pytestmark = pytest.mark.docker


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed (Debian package `prometheus`; .ci/run installs it)")
        raise AssertionError("unreachable")
    return path


def fleetpulse(*args: str) -> list[str]:
    return [sys.executable, "-m", "fleetpulse", *args]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def test_promtool_finds_nothing_to_lint_in_an_exposition_with_containers(
    sandbox: DockerSandbox,
) -> None:
    promtool = tool("promtool")
    sandbox.run_container("web", "sleep 3600")
    sandbox.run_container("worker", "sh -c 'while :; do :; done'")
    exposition = subprocess.run(
        fleetpulse(
            "exporter",
            "--once",
            "--docker-host",
            sandbox.engine.url,
            "--container-include",
            f"{sandbox.prefix}-*",
        ),
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
        env=child_env(),
    ).stdout
    # The lint is only worth something if the families it lints are really there.
    for name in ("host_cpu_logical_processors", "host_disk_usage_percent", "container_info"):
        assert f"\n{name}" in exposition, f"{name} missing from the exposition"
    assert f'container="{sandbox.prefix}-worker"' in exposition
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=60
    )
    assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), (
        f"promtool check metrics: rc={lint.returncode}\n{lint.stdout}{lint.stderr}"
    )


def test_promtool_reports_a_name_it_dislikes() -> None:
    """The check above can fail: promtool does reject what the old catalog had."""
    bad = "# HELP host_cpu_logical_count Logical CPUs.\n# TYPE host_cpu_logical_count gauge\nhost_cpu_logical_count 2\n"
    lint = subprocess.run(
        [tool("promtool"), "check", "metrics"],
        input=bad,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert lint.returncode != 0 and "_count" in lint.stdout + lint.stderr


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@contextlib.contextmanager
def running(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=child_env())
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_prometheus_scrapes_the_exporter_with_health_up(tmp_path: Path) -> None:
    prometheus = tool("prometheus")
    exporter_port, prometheus_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: fleetpulse\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n"
    )
    exporter_args = fleetpulse(
        "exporter", "--listen", f"127.0.0.1:{exporter_port}", "--interval", "1s",
        "--disable", "containers",
    )  # fmt: skip
    prometheus_args = [
        prometheus,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ]
    api = f"http://127.0.0.1:{prometheus_port}/api/v1"
    with (
        running(exporter_args, tmp_path / "exporter.log"),
        running(prometheus_args, tmp_path / "prometheus.log") as prom,
    ):
        target: dict[str, Any] = {}
        samples: list[Any] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            with contextlib.suppress(OSError, ValueError):
                active = get_json(f"{api}/targets")["data"]["activeTargets"]
                target = active[0] if active else {}
                query = "host_cpu_logical_processors"
                samples = get_json(f"{api}/query?query={query}")["data"]["result"]
                if target.get("health") == "up" and samples:
                    break
            time.sleep(0.5)
        assert target.get("health") == "up", (
            f"target {target}\n{(tmp_path / 'exporter.log').read_text()[-2000:]}"
        )
        assert target.get("lastError") == ""
        assert float(samples[0]["value"][1]) == os.cpu_count()
        # Prometheus counts what it had to drop or could not parse (in its own /metrics);
        # none of it may be ours.
        with urllib.request.urlopen(f"http://127.0.0.1:{prometheus_port}/metrics", timeout=5) as r:
            own = r.read().decode()
        for metric in (
            "prometheus_target_scrapes_sample_out_of_order_total",
            "prometheus_target_scrapes_sample_duplicate_timestamp_total",
            "prometheus_target_scrapes_sample_out_of_bounds_total",
            "prometheus_target_scrapes_exceeded_sample_limit_total",
        ):
            values = [line.split()[-1] for line in own.splitlines() if line.startswith(metric)]
            assert values == ["0"], (metric, values)
