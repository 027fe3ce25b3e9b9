"""The command line: --help everywhere, honest refusals, one clear line per problem."""

import subprocess
import sys
from pathlib import Path

import pytest

from fleetpulse.cli import build_parser, main

COMMANDS = [
    ["up"],
    ["exporter"],
    ["collector"],
    ["alerting"],
    ["rules"],
    ["rules", "check"],
    ["rules", "test"],
    ["notify"],
    ["notify", "test"],
    ["status"],
    ["history"],
    ["logs"],
    ["influx"],
    ["influx", "setup"],
]


@pytest.mark.parametrize("command", [[], *COMMANDS], ids=lambda c: " ".join(c) or "top")
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fleetpulse")


def test_exporter_once_prints_one_exposition() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fleetpulse", "exporter", "--once"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "# TYPE host_cpu_usage_percent gauge" in done.stdout
    assert "exporter_collect_errors_total" in done.stdout


def test_bad_listen_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["up", "--api-listen", "nowhere"])
    assert exit_info.value.code == 2
    assert "expected host:port" in capsys.readouterr().err


def test_bad_rule_file_stops_up_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "host.yaml").write_text(
        "groups:\n  - name: host\n    rules:\n      - metric: up\n        threshold: 0\n"
    )
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(
        "alerting:\n  rules: [rules/]\napi: {listen: '127.0.0.1:0'}\n"
        "exporter: {listen: '127.0.0.1:0'}\n"
    )
    assert main(["up", "-c", str(config), "--data-dir", str(tmp_path / "data")]) == 1
    assert not (tmp_path / "data").exists()
    assert capsys.readouterr().err.strip() == (
        f"error: {rules / 'host.yaml'}:4: groups[0].rules[0].alert: required: the alert's name"
    )
