"""The committed dashboards and provisioning files are what the generator produces now."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetpulse.app.cli import main as cli_main
from grafana.contract import GRAFANA_DIR
from grafana.generate import STALE_HINT, render, stale_files


def main(args: list[str]) -> int:
    return cli_main(["dashboards", *args])


def test_committed_files_are_what_the_generator_produces() -> None:
    stale = stale_files(render(), GRAFANA_DIR)
    assert not stale, f"stale generated files {stale}; {STALE_HINT}"


def test_check_fails_on_a_stale_file_and_passes_after_generating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--out", str(tmp_path), "--check"]) == 0
    host = tmp_path / "dashboards" / "host.json"
    host.write_text(host.read_text().replace("CPU usage", "CPU use"))
    assert main(["--out", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert f"stale: {host}; run fleetpulse dashboards" in err


def test_changed_thresholds_yaml_changes_the_dashboards(tmp_path: Path) -> None:
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text(
        "thresholds:\n"
        "  defaults:\n"
        "    cpu: {warning: 50, critical: 95}\n"
        "    memory: {warning: 70, critical: 85}\n"
        "    disk: {warning: 70, critical: 85}\n"
        "  hosts:\n"
        '    "build-*": {cpu: {warning: 90, critical: 99}}\n'
    )
    files = render(thresholds_path=thresholds)
    host = files["dashboards/host.json"]
    assert '"value": 50.0' in host and '"value": 95.0' in host
    # a host's own levels are not frozen in: the lines read what the collector publishes
    assert "build-" not in host
    assert stale_files(files, GRAFANA_DIR)  # the committed ones follow rules/thresholds.yaml


def test_config_retention_and_bucket_reach_the_queries(tmp_path: Path) -> None:
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(
        "storage:\n  influxdb: {bucket: metrics, org: acme}\nretention: {raw: 72h, hourly: 90d}\n"
        "scrape: {interval: 30s}\n"
    )
    out = tmp_path / "out"
    assert main(["-c", str(config), "--out", str(out)]) == 0
    files = {
        name: (out / name).read_text()
        for name in ("dashboards/host.json", "provisioning/datasources/fleetpulse.yaml")
    }
    host = files["dashboards/host.json"]
    assert f'tier_now - {72 * 3600 * 10**9} then \\"metrics\\"' in host
    assert f'tier_now - {90 * 86400 * 10**9} then \\"metrics_1h\\" else \\"metrics_1d\\"' in host
    datasource = files["provisioning/datasources/fleetpulse.yaml"]
    assert "organization: acme" in datasource and "defaultBucket: metrics" in datasource
    assert "timeInterval: 30s" in datasource


def test_a_bad_thresholds_file_is_refused_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text("thresholds:\n  defaults:\n    cpu: {warning: 70}\n")
    assert main(["--thresholds", str(thresholds), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{thresholds}:3" in err and "expected both warning and critical" in err
    assert not (tmp_path / "dashboards").exists()
