"""Service definitions on hosts: systemd units, the launchd plist, the Windows installer.

Their command lines must use flags that `fleetpulse <cmd> --help` knows and the default
ports; the systemd units also go through `systemd-analyze verify` and its offline
security assessment, which read them as systemd would.
"""

from __future__ import annotations

import configparser
import plistlib
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from fleetpulse.app.config import load_config
from tests.deploy.cli import (
    DEPLOY,
    EXPORTER_PORT,
    REPO,
    Invocation,
    invocation,
    unknown_flags,
)
from tests.support.require import missing

SYSTEMD = DEPLOY / "systemd"
UNITS = {
    "fleetpulse-exporter.service": "exporter",
    "fleetpulse-collector.service": "collector",
    "fleetpulse-alerting.service": "alerting",
}
INSTALLED = "/opt/fleetpulse/bin/fleetpulse"
SANDBOX = {
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "ProtectSystem": "strict",
    "DynamicUser": "yes",
    "CapabilityBoundingSet": "",
}


def unit(name: str) -> configparser.RawConfigParser:
    # systemd allows a key more than once (SystemCallFilter); keep the last for reading
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def exec_start(name: str) -> Invocation:
    argv = shlex.split(unit(name)["Service"]["ExecStart"])
    assert argv[0] == INSTALLED, f"{name}: ExecStart runs {argv[0]}, not {INSTALLED}"
    return invocation(name, argv[1:])


def test_units_run_their_command_with_known_flags() -> None:
    assert {p.name for p in SYSTEMD.glob("*.service")} == set(UNITS)
    for name, command in UNITS.items():
        call = exec_start(name)
        assert call.words == (command,), name
        assert not unknown_flags(call), f"{name}: {unknown_flags(call)}"
        assert call.value("-c"), f"{name}: no config file"


def test_exporter_unit_listens_on_the_default_port_with_docker_group() -> None:
    call = exec_start("fleetpulse-exporter.service")
    assert call.listen_port() == EXPORTER_PORT
    service = unit("fleetpulse-exporter.service")["Service"]
    assert service["SupplementaryGroups"] == "docker"
    assert service["ProtectHome"] == "read-only"  # disk usage of /home


def test_every_unit_is_sandboxed() -> None:
    for name in UNITS:
        service = unit(name)["Service"]
        for key, value in SANDBOX.items():
            assert service.get(key) == value, f"{name}: {key}={service.get(key)!r}"


def test_collector_and_alerting_share_one_state_directory_as_data_dir() -> None:
    """With the embedded store the alert engine reads the collector's SQLite file."""
    dirs = set()
    for name in ("fleetpulse-collector.service", "fleetpulse-alerting.service"):
        service = unit(name)["Service"]
        state = service["StateDirectory"]
        assert exec_start(name).value("--data-dir") == f"/var/lib/{state}", name
        assert service["User"] == "fleetpulse", name  # one dynamic uid for both units
        dirs.add(state)
    assert len(dirs) == 1


def analyzable_copies(tmp_path: Path) -> list[Path]:
    """The units with ExecStart pointing at an executable that exists here."""
    if shutil.which("systemd-analyze") is None:
        missing("systemd-analyze is not installed (Debian package systemd)")
    fleetpulse = shutil.which("fleetpulse") or str(REPO / ".venv" / "bin" / "fleetpulse")
    copies = []
    for name in UNITS:
        copy = tmp_path / name
        copy.write_text((SYSTEMD / name).read_text().replace(INSTALLED, fleetpulse))
        copies.append(copy)
    return copies


def test_systemd_accepts_every_directive(tmp_path: Path) -> None:
    copies = analyzable_copies(tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "verify", *map(str, copies)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # unknown keys and bad values are warnings on stderr with exit 0, so read stderr too
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_systemd_rates_every_unit_ok_on_exposure(tmp_path: Path) -> None:
    for copy in analyzable_copies(tmp_path):
        done = subprocess.run(
            ["systemd-analyze", "security", "--offline=yes", str(copy)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        level = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", done.stdout)
        assert level, done.stdout[-2000:] + done.stderr
        # systemd's scale: <= 1.9 OK, then MEDIUM, EXPOSED, UNSAFE
        assert level.group(2) == "OK", f"{copy.name}: {level.group(0)}"


def test_launchd_plist_runs_the_exporter_on_the_default_port() -> None:
    path = DEPLOY / "launchd" / "org.fleetpulse.exporter.plist"
    with path.open("rb") as f:
        plist = plistlib.load(f)
    assert plist["Label"] == path.stem
    argv = plist["ProgramArguments"]
    assert argv[0] == INSTALLED
    call = invocation(path.name, argv[1:])
    assert call.words == ("exporter",) and not unknown_flags(call)
    assert call.listen_port() == EXPORTER_PORT
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] is True
    assert plist["UserName"] != "root"


def test_exporter_config_for_hosts_loads_and_matches_the_units() -> None:
    config = load_config(DEPLOY / "config" / "exporter.yaml")
    assert config.exporter.listen.port == EXPORTER_PORT
    assert exec_start("fleetpulse-exporter.service").value("-c") == "/etc/fleetpulse/exporter.yaml"


def test_windows_installer_passes_known_flags_and_the_default_port() -> None:
    script = (DEPLOY / "windows" / "install-exporter.ps1").read_text()
    arguments = re.search(r"\$arguments = @\((.*)\)", script)
    assert arguments, "install-exporter.ps1: no `$arguments = @(...)` line"
    # PowerShell strings: '...' literal, "..." with $Port interpolated
    port = re.search(r"\[int\]\$Port = (\d+)", script)
    assert port and int(port.group(1)) == EXPORTER_PORT
    quoted = re.findall(r"'([^']*)'|\"((?:[^\"`]|`.)*)\"", arguments.group(1))
    words = [(single or double).replace("$Port", port.group(1)) for single, double in quoted]
    words = [w.replace('`"', "") for w in words]
    call = invocation("install-exporter.ps1", words)
    assert call.words == ("exporter",) and not unknown_flags(call), words
    assert call.listen_port() == EXPORTER_PORT
    assert "/healthz" in script  # it waits for the exporter to answer
