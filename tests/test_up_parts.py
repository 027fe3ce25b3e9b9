"""`fleetpulse up` runs its parts in one process: the exporter's /logs keeps only the exporter's
own lines, and the API shows the thresholds the alert engine reloaded."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.poll import eventually_sync
from tests.support.servers import free_port
from tests.test_up import start_up, stop

API_TOKEN = "api-token-for-up"
EXPORTER_TOKEN = "exporter-token-for-up"


def get(url: str, token: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_up_exporter_logs_hold_its_own_lines_not_the_collectors_or_the_apis(
    tmp_path: Path,
) -> None:
    exporter = f"http://127.0.0.1:{free_port()}"
    proc, api = start_up(
        tmp_path,
        "scrape: {interval: 1s, timeout: 1s}\n"
        f"exporter: {{listen: '{exporter.removeprefix('http://')}', interval: 1s,"
        f" auth: {{bearer_token: {EXPORTER_TOKEN}}}, containers: {{enabled: false}}}}\n"
        f"api: {{listen: '127.0.0.1:0', token: {API_TOKEN}}}\n",
    )
    try:
        # the collector scraped the exporter (so it logged its own lines: target added, …)
        eventually_sync(
            lambda: json.loads(get(f"{api}/api/v1/hosts", API_TOKEN)[1])["hosts"],
            "the local host in the API",
            within=30,
        )
        # one refusal by the API and one by the exporter, each logged by its own service
        assert get(f"{api}/api/v1/hosts", "wrong")[0] == 401
        assert get(f"{exporter}/metrics", "wrong")[0] == 401
        status, body = get(f"{exporter}/logs?limit=10000", EXPORTER_TOKEN)
    finally:
        code, err = stop(proc)
    assert status == 200, body
    lines = [json.loads(row) for row in body.decode().splitlines()]
    loggers = {line["logger"] for line in lines}
    assert all(name.startswith("exporter.") for name in loggers), sorted(loggers)
    messages = [line["message"] for line in lines]
    assert any(m.startswith("exporter listening ") for m in messages), messages
    assert any(m.startswith("auth failed ") and "path=/metrics" in m for m in messages), messages
    assert not any("path=/api/v1/hosts" in m for m in messages), messages
    # the process' own log (stderr) still has every part's lines
    assert "collector.scrapers: target added" in err
    assert "fleetpulse.core.httpauth: auth failed" in err and "path=/api/v1/hosts" in err
    assert code == 0, err


RULE = """\
groups:
  - name: host
    rules:
      - alert: HostCpuHigh
        metric: host_cpu_usage_percent
        reduce: avg
        window: 1m
        op: ">"
        threshold: cpu
        for: 5m
"""


def test_up_api_shows_the_thresholds_the_engine_reloaded(tmp_path: Path) -> None:
    rules = tmp_path / "my-rules"
    rules.mkdir()
    (rules / "host.yaml").write_text(RULE)
    thresholds = rules / "thresholds.yaml"
    thresholds.write_text("thresholds:\n  defaults:\n    cpu: {warning: 70, critical: 85}\n")
    proc, api = start_up(
        tmp_path,
        "scrape: {interval: 1s, timeout: 1s}\n"
        "exporter: {listen: '127.0.0.1:0', interval: 1s, containers: {enabled: false}}\n"
        "api: {listen: '127.0.0.1:0'}\n"
        f"alerting: {{rules: [{json.dumps(str(rules))}], interval: 1s}}\n",
    )

    def host() -> dict[str, Any] | None:
        hosts = json.loads(get(f"{api}/api/v1/hosts")[1])["hosts"]
        return hosts[0] if hosts else None

    try:
        before = eventually_sync(host, "the local host in the API", within=30)
        assert before["thresholds"]["cpu"] == {"warning": 70, "critical": 85}
        assert before["customized"] is False
        # a new default warning, and an override of the critical level for this host
        thresholds.write_text(
            "thresholds:\n"
            "  defaults:\n"
            "    cpu: {warning: 60, critical: 85}\n"
            "  hosts:\n"
            f"    {json.dumps(before['host'] + '*')}: {{cpu: {{critical: 95}}}}\n"
        )
        after = eventually_sync(
            lambda: (h := host()) is not None and h["customized"] and h,
            "the new thresholds in the API",
            within=30,
        )
    finally:
        code, err = stop(proc)
    assert after["thresholds"]["cpu"] == {"warning": 60, "critical": 95}
    assert code == 0, err
