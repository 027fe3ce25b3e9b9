"""FleetPulse as a user installs it: a wheel built from this checkout, installed with pip into a
fresh virtual environment, run from empty folders outside the checkout with nothing of the
checkout on its path.

This module imports nothing from the project, so what runs is the wheel, not the source tree.
The wheel and the environment are made once per session; the first run downloads the
dependencies (pip's cache serves the later ones).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.require import missing

REPO = Path(__file__).resolve().parents[1]
BIN = "Scripts" if os.name == "nt" else "bin"
# pip output that means the package index was out of reach, not that the package is broken
OFFLINE = re.compile(
    r"No matching distribution|Could not find a version|NewConnectionError|"
    r"Name or service not known|Temporary failure in name resolution"
)
BUILTIN_BANNER = re.compile(
    r"^  rules +(\d+) in (\d+) files \(built-in; `fleetpulse init` writes a copy to edit\)$",
    re.MULTILINE,
)

pytestmark = pytest.mark.timeout(900)  # the first run builds, downloads and installs


def clean_env() -> dict[str, str]:
    """This environment without what could lead into the checkout: PYTHONPATH, an active
    virtual environment, the checkout's folders on PATH."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    }
    path = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(p for p in path if not p.startswith(str(REPO)))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(args: list[str | Path], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def copy_sources(dest: Path) -> None:
    """What the build reads: pyproject.toml, README.md, the packages pyproject includes and
    its in-tree build backend (tools/packaging). Building from a copy keeps the build's build/
    and egg-info out of the checkout, and a stale build/ there out of the wheel. The console's
    uPlot comes along if `npm ci` put it into console/static/vendor/ here; if not, the build
    runs npm itself."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        name = pattern.rstrip("*")
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    for backend_path in project["build-system"]["backend-path"]:
        shutil.copytree(REPO / backend_path, dest / backend_path, ignore=ignore)


def pip_failed(what: str, done: subprocess.CompletedProcess[str]) -> None:
    tail = (done.stdout + done.stderr)[-3000:]
    if OFFLINE.search(tail):
        missing(f"pip could not reach the package index to {what}:\n{tail}")
    pytest.fail(f"pip could not {what}:\n{tail}")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel of this checkout and its dependencies."""
    work = tmp_path_factory.mktemp("install")
    copy_sources(work / "src")
    wheels = work / "wheels"
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", wheels, work / "src"],
        cwd=work,
        timeout=600,
    )
    if built.returncode != 0:
        pip_failed("build the wheel", built)
    (wheel,) = wheels.glob("fleetpulse-*.whl")
    env_dir = work / "venv"
    made = run([sys.executable, "-m", "venv", env_dir], cwd=work, timeout=300)
    if made.returncode != 0:
        missing(f"python -m venv cannot make an environment here:\n{made.stderr[-2000:]}")
    python = env_dir / BIN / "python"
    installed = run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", wheel],
        cwd=work,
        timeout=900,
    )
    if installed.returncode != 0:
        pip_failed("install the wheel and its dependencies", installed)
    return env_dir


def fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def running_up(env_dir: Path, cwd: Path, logs: Path, *args: str) -> Iterator[tuple[str, str]]:
    """`fleetpulse up ARGS` of the installed package on free loopback ports, run from `cwd`;
    yields its banner and API base URL, then stops it with SIGTERM and checks it exits 0."""
    logs.mkdir(exist_ok=True)
    out_path, err_path = logs / "up.out", logs / "up.err"
    command = [
        str(env_dir / BIN / "fleetpulse"),
        "up",
        *args,
        "--exporter-listen",
        "127.0.0.1:0",
        "--api-listen",
        "127.0.0.1:0",
    ]
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(command, cwd=cwd, env=clean_env(), stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 60
        banner = ""
        while "Press Ctrl-C" not in banner and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            banner = out_path.read_text()
        match = re.search(r"api\s+http://([\d.]+:\d+)/api/v1/hosts", banner)
        if match is None:
            pytest.fail(f"no banner from fleetpulse up:\n{banner}\n{err_path.read_text()}")
        yield banner, f"http://{match.group(1)}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"fleetpulse up did not stop on SIGTERM:\n{err_path.read_text()}")
    errors = err_path.read_text()
    assert code == 0, errors
    assert "Traceback" not in errors


def local_host(api: str) -> dict[str, Any]:
    """The local host from the API, once it has CPU, memory and disk values."""
    deadline = time.monotonic() + 60
    hosts: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        hosts = fetch_json(f"{api}/api/v1/hosts")["hosts"]
        if hosts and all(hosts[0][key] is not None for key in ("cpu", "memory", "disk")):
            return hosts[0]
        time.sleep(0.2)
    pytest.fail(f"the local host has no CPU, memory and disk values after 60 s: {hosts}")


def test_installed_up_runs_from_an_empty_folder_on_the_builtin_rules(
    venv: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    with running_up(venv, folder, tmp_path / "logs", "--data-dir", "data") as (banner, api):
        match = BUILTIN_BANNER.search(banner)
        assert match is not None, banner
        assert int(match.group(1)) > 0 and int(match.group(2)) > 0
        host = local_host(api)
        # levels from the built-in thresholds.yaml
        assert {"cpu", "memory", "disk"} <= set(host["thresholds"])
        # the console and its charting library, from the wheel
        assert re.search(r"^  console   http://[\d.]+:\d+/$", banner, re.MULTILINE), banner
        with urllib.request.urlopen(f"{api}/", timeout=5) as response:
            page = response.read().decode()
        assert '<script type="module" src="/static/app.js">' in page
        assert 'class="missing"' not in page  # uPlot is in the wheel
        with urllib.request.urlopen(f"{api}/static/vendor/uPlot.esm.js", timeout=5) as response:
            assert b"export { uPlot as default }" in response.read()
    assert [p.name for p in folder.iterdir()] == ["data"]  # nothing else written here
    assert (folder / "data" / "metrics.db").is_file()


def test_the_wheel_carries_the_builtin_rules_and_the_grafana_files(
    venv: Path, tmp_path: Path
) -> None:
    where = run(
        [
            venv / BIN / "python",
            "-c",
            "from fleetpulse.core.defaults import BUILTIN_RULES; "
            "from grafana.contract import GRAFANA_DIR; "
            "print(BUILTIN_RULES); print(GRAFANA_DIR)",
        ],
        cwd=tmp_path,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    rules, grafana = (Path(line) for line in where.stdout.splitlines())
    assert rules.is_relative_to(venv) and grafana.is_relative_to(venv), where.stdout

    def names(folder: Path, pattern: str) -> list[Path]:
        return sorted(p.relative_to(folder) for p in folder.rglob(pattern))

    assert names(rules, "*.yaml") == names(
        REPO / "fleetpulse" / "core" / "defaults" / "rules", "*.yaml"
    )
    for pattern in ("dashboards/*.json", "provisioning/*/*.yaml"):
        assert names(grafana, pattern) == names(REPO / "grafana", pattern) != []
    check = run([venv / BIN / "fleetpulse", "rules", "check", rules], cwd=tmp_path, timeout=60)
    assert check.returncode == 0, check.stderr
    assert f"{rules / 'host.yaml'}: ok" in check.stdout


def test_installed_init_then_up_runs_on_the_written_config_and_rules(
    venv: Path, tmp_path: Path
) -> None:
    fleetpulse = venv / BIN / "fleetpulse"
    init = run([fleetpulse, "init", "site"], cwd=tmp_path, timeout=60)
    assert init.returncode == 0, init.stderr
    assert init.stdout.splitlines()[-1] == "  fleetpulse up -c site/fleetpulse.yaml"
    site = tmp_path / "site"
    check = run([fleetpulse, "rules", "check", "site/rules"], cwd=tmp_path, timeout=60)
    assert check.returncode == 0, check.stderr
    # as a user would: scrape every second instead of every 15
    config = site / "fleetpulse.yaml"
    text = config.read_text()
    assert "  interval: 15s" in text
    config.write_text(text.replace("  interval: 15s", "  interval: 1s\n  timeout: 1s", 1))
    up_args = ("-c", "site/fleetpulse.yaml", "--data-dir", "data")
    with running_up(venv, tmp_path, tmp_path / "logs", *up_args) as (banner, api):
        assert re.search(
            rf"^  rules +\d+ in \d+ files \({re.escape(str(site.resolve() / 'rules'))}\)$",
            banner,
            re.MULTILINE,
        ), banner
        assert "every 1s" in banner
        local_host(api)
