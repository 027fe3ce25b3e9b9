"""The command line: --help everywhere, honest refusals, one clear line per problem."""

import subprocess
import sys
from pathlib import Path

import pytest

from fleetpulse.app.cli import build_parser, main
from tests.support.cli import run_cli
from tests.support.tls import self_signed

COMMANDS = [
    ["init"],
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
    ["dashboards"],
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


@pytest.mark.parametrize("command", [["exporter"], ["notify", "test", "ops"], ["influx", "setup"]])
def test_commands_that_keep_no_data_refuse_data_dir(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--data-dir", "x"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --data-dir x" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command[:2], "--help"])
    assert "--data-dir" not in capsys.readouterr().out


async def test_an_unreadable_tls_file_is_named_with_its_flag(tmp_path: Path) -> None:
    tls = self_signed(tmp_path)
    code, _, err = await run_cli(
        "exporter", "--listen", "127.0.0.1:0", "--tls-cert-file", "nope.crt",
        "--tls-key-file", str(tls.key_file), cwd=tmp_path,
    )  # fmt: skip
    assert code == 1
    assert err.strip().splitlines() == [
        "error: command line: --tls-cert-file: cannot read nope.crt: No such file or directory"
    ]


async def test_an_unreadable_tls_file_is_named_with_its_key_and_line(tmp_path: Path) -> None:
    self_signed(tmp_path)
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(
        "exporter:\n  listen: 127.0.0.1:0\n  tls:\n    cert_file: cert.pem\n"
        "    key_file: keys/nope.key\n"
    )
    code, _, err = await run_cli("exporter", "-c", str(config))
    assert code == 1
    assert err.strip().splitlines() == [
        f"error: {config}:5: exporter.tls.key_file: cannot read "
        f"{tmp_path / 'keys' / 'nope.key'}: No such file or directory"
    ]


async def test_notify_test_without_a_config_file_says_so(tmp_path: Path) -> None:
    code, out, err = await run_cli("notify", "test", "ops", cwd=tmp_path)
    assert (code, out) == (1, "")
    assert err.strip().splitlines() == [
        "error: no config file: notify test reads alerting.channels from fleetpulse.yaml "
        f"(none in {tmp_path}); pass -c FILE"
    ]
