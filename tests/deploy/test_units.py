"""Service definitions on hosts: systemd units, the launchd plist, the Windows installer.

Their command lines must use flags that `fleetpulse <cmd> --help` knows and the default
ports; the systemd units also go through `systemd-analyze verify` and its offline
security assessment, which read them as systemd would (the README shows the scores). No
macOS or Windows host is here: the launchd plist is read with plistlib and the Windows
installer's argument list and config are taken from the script; both command lines go
through the real parser (`fleetpulse.app.cli.build_parser()`).
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
    parse,
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


class UnitParser(configparser.RawConfigParser):
    """Keys as written: systemd's are case-sensitive (configparser lowercases by default)."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def unit(name: str) -> configparser.RawConfigParser:
    # systemd allows a key more than once (SystemCallFilter); keep the last for reading
    parser = UnitParser(strict=False, delimiters=("=",))
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


# the README's table of exposure scores: | `fleetpulse-exporter.service` | 1.8 OK | ...
README_SCORE = re.compile(r"^\| `(fleetpulse-[a-z]+\.service)` \| ([\d.]+) (\w+) \|", re.M)


def test_systemd_rates_every_unit_ok_on_exposure_as_the_readme_says(tmp_path: Path) -> None:
    scores = {}
    for copy in analyzable_copies(tmp_path):
        done = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", str(copy)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        level = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", done.stdout)
        assert level, done.stdout[-2000:] + done.stderr
        # systemd's scale: <= 1.9 OK, then MEDIUM, EXPOSED, UNSAFE
        assert level.group(2) == "OK", f"{copy.name}: {level.group(0)}"
        scores[copy.name] = (level.group(1), level.group(2))
    text = (REPO / "README.md").read_text()
    readme = {m.group(1): (m.group(2), m.group(3)) for m in README_SCORE.finditer(text)}
    assert readme == scores, "README.md's exposure scores differ from systemd-analyze's"


def test_launchd_plist_runs_the_exporter_on_the_default_port() -> None:
    path = DEPLOY / "launchd" / "org.fleetpulse.exporter.plist"
    with path.open("rb") as f:
        plist = plistlib.load(f)
    assert plist["Label"] == path.stem
    argv = plist["ProgramArguments"]
    assert argv[0] == INSTALLED
    call = invocation(path.name, argv[1:])
    assert call.words == ("exporter",)
    args = parse(call)  # the real parser accepts every argument
    assert args.listen.port == EXPORTER_PORT
    assert args.config == Path("/etc/fleetpulse/exporter.yaml")
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] is True
    assert plist["UserName"] != "root"


def test_exporter_config_for_hosts_loads_and_matches_the_units() -> None:
    config = load_config(DEPLOY / "config" / "exporter.yaml")
    assert config.exporter.listen.port == EXPORTER_PORT
    assert exec_start("fleetpulse-exporter.service").value("-c") == "/etc/fleetpulse/exporter.yaml"


WINDOWS_SCRIPT = DEPLOY / "windows" / "install-exporter.ps1"
# the values of the script's defaults, as PowerShell fills them in on a usual Windows host
WINDOWS_CONFIG_DIR = r"C:\ProgramData\FleetPulse"


def windows_default_port(script: str) -> str:
    port = re.search(r"\[int\]\$Port = (\d+)", script)
    assert port, "install-exporter.ps1: no `[int]$Port = N` parameter"
    return port.group(1)


def test_windows_installer_passes_arguments_the_exporter_accepts() -> None:
    """The argument list the script registers (task or NSSM service), as PowerShell expands
    it, read by the real parser. The script itself cannot run here (no Windows host)."""
    script = WINDOWS_SCRIPT.read_text()
    arguments = re.search(r"\$arguments = @\((.*)\)", script)
    assert arguments, "install-exporter.ps1: no `$arguments = @(...)` line"
    port = windows_default_port(script)
    assert int(port) == EXPORTER_PORT
    config = re.search(r"\$config = Join-Path \$ConfigDir '([^']+)'", script)
    assert config, "install-exporter.ps1: no `$config = Join-Path $ConfigDir '...'` line"
    config_path = f"{WINDOWS_CONFIG_DIR}\\{config.group(1)}"
    # PowerShell strings: '...' literal, "..." with $Port and $config interpolated and
    # `" an escaped quote (it keeps a path with spaces one argument for the service)
    quoted = re.findall(r"'([^']*)'|\"((?:[^\"`]|`.)*)\"", arguments.group(1))
    words = [
        (single or double).replace("$Port", port).replace("$config", config_path)
        for single, double in quoted
    ]
    words = [w.replace('`"', "") for w in words]
    call = invocation(WINDOWS_SCRIPT.name, words)
    assert call.words == ("exporter",), words
    args = parse(call)
    assert args.listen.port == EXPORTER_PORT
    assert str(args.config) == config_path
    assert "/healthz" in script  # it waits for the exporter to answer


def test_windows_installer_writes_a_config_the_loader_reads(tmp_path: Path) -> None:
    """The exporter.yaml the script writes (its here-string, $Port and $ConfigDir filled in)
    through the real config loader."""
    script = WINDOWS_SCRIPT.read_text()
    (body,) = re.findall(r'@"\r?\n(.*?)\r?\n"@', script, re.S)
    text = body.replace("$Port", windows_default_port(script))
    text = text.replace("$ConfigDir", WINDOWS_CONFIG_DIR)
    assert "$" not in text, text  # nothing left for PowerShell to expand
    path = tmp_path / "exporter.yaml"
    path.write_text(text)
    config = load_config(path)
    assert config.exporter.listen.port == EXPORTER_PORT
    assert config.exporter.interval == 15.0
