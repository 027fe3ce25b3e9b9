"""file_sd files: both formats, re-read on change, and a bad file keeps the last good list."""

import json
import logging
import os
from pathlib import Path

import pytest

from collector.file_sd import FileDiscovery, read_targets_file
from fleetpulse.core.errors import ConfigError


def touch_later(path: Path, text: str) -> None:
    """Write and push the mtime forward, so a change within one clock tick is still seen."""
    stat = path.stat() if path.exists() else None
    path.write_text(text)
    if stat is not None:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_our_target_format_and_prometheus_groups_in_yaml_and_json(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("")
    ours = tmp_path / "ours.yaml"
    ours.write_text(
        "- url: https://web-1:9184/metrics\n"
        "  labels: {role: game}\n"
        "  tls: {ca_file: ca.pem}\n"
        "  bearer_token: s3cret\n"
    )
    prom = tmp_path / "prom.json"
    prom.write_text(
        json.dumps(
            [
                {
                    "targets": ["db-1:9100", "db-2:9100"],
                    "labels": {"job": "node", "role": "db", "__metrics_path__": "/m"},
                }
            ],
            indent="\t",
        )
    )
    (web,) = read_targets_file(ours, tmp_path, 15.0)
    assert (web.url, web.host, web.labels) == (
        "https://web-1:9184/metrics",
        "web-1",
        (("role", "game"),),
    )
    assert web.tls_ca_file == tmp_path / "ca.pem" and web.bearer_token == "s3cret"
    db1, db2 = read_targets_file(prom, tmp_path, 15.0)
    assert (db1.url, db1.host, db1.job, db1.labels) == (
        "http://db-1:9100/m",
        "db-1",
        "node",
        (("role", "db"),),
    )
    assert db2.host == "db-2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- url: ftp://x/metrics\n", ":1: [0].url: expected an http:// or https:// URL"),
        (
            "- url: http://a:1/m\n- url: http://b:1/m\n  tiemout: 5s\n",
            ":3: [1].tiemout: unknown key",
        ),
        ("- targets: [nohost]\n", ":1: [0].targets: expected host:port"),
        ("{targets: [a:1]}\n", ":1: (top level): expected a list of targets"),
        ("- url: [\n", ":1: invalid YAML"),
        (
            "- {url: http://a:1/m, timeout: 20s}\n",
            ":1: [0].timeout: expected a timeout no longer than the interval (scrape.interval: 15s)",
        ),
        (
            "- url: http://a:1/m\n  interval: 5s\n  timeout: 6s\n",
            ":3: [0].timeout: expected a timeout no longer than the interval "
            "([0].interval: 5s, line 2)",
        ),
    ],
)
def test_a_bad_file_is_refused_with_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_targets_file(path, tmp_path, 15.0)
    assert any(str(p).startswith(str(path)) and message in str(p) for p in info.value.problems), (
        info.value.problems
    )


def test_discovery_sees_added_changed_and_removed_files_and_keeps_the_last_good_list(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    discovery = FileDiscovery([str(tmp_path / "*.yaml")], tmp_path, 15.0)
    assert discovery.poll() is False and discovery.targets() == []
    a = tmp_path / "a.yaml"
    a.write_text("- url: http://a:1/metrics\n")
    assert discovery.poll() is True
    assert [t.host for t in discovery.targets()] == ["a"]
    assert discovery.poll() is False  # unchanged files are not re-read

    b = tmp_path / "b.yaml"
    b.write_text("- targets: ['b:1', 'c:1']\n")
    assert discovery.poll() is True
    assert [t.host for t in discovery.targets()] == ["a", "b", "c"]

    with caplog.at_level(logging.WARNING, logger="collector.file_sd"):
        touch_later(b, "- targets: ['b:1']\n- url: nope\n")
        assert discovery.poll() is False  # refused: b's last good targets stay
    assert [t.host for t in discovery.targets()] == ["a", "b", "c"]
    assert f"{b}:2: [1].url" in caplog.text and "kept_targets=2" in caplog.text

    touch_later(b, "- targets: ['b:1']\n")
    assert discovery.poll() is True
    assert [t.host for t in discovery.targets()] == ["a", "b"]
    a.unlink()
    assert discovery.poll() is True
    assert [t.host for t in discovery.targets()] == ["b"]


def test_relative_paths_in_entries_resolve_against_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir, sd_dir = tmp_path / "etc", tmp_path / "etc" / "targets"
    sd_dir.mkdir(parents=True)
    (config_dir / "token").write_text("s3cret\n")
    path = sd_dir / "web.yaml"
    path.write_text(
        "- url: https://web-1:9184/metrics\n  bearer_token_file: token\n  tls: {ca_file: ca.pem}\n"
    )
    monkeypatch.chdir(tmp_path)
    (web,) = read_targets_file(path, config_dir, 15.0)
    assert web.bearer_token == "s3cret" and web.tls_ca_file == config_dir / "ca.pem"


def test_a_target_may_set_a_timeout_within_its_own_longer_interval(tmp_path: Path) -> None:
    path = tmp_path / "slow.yaml"
    path.write_text("- {url: http://a:1/m, interval: 1m, timeout: 20s}\n")
    (slow,) = read_targets_file(path, tmp_path, 15.0)
    assert (slow.interval, slow.timeout) == (60.0, 20.0)
