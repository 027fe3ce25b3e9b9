"""deploy/Dockerfile: read, parsed by the real Docker engine, and its steps replayed.

No base image can be pulled here (the private engine has no registry), so the image itself
is never built on this machine. What is checked instead:
- the file's instructions (known, base pinned, non-root USER, HEALTHCHECK, ENTRYPOINT);
- the Docker engine's own parser reads the whole file: the build stops only at the pull
  of the base image;
- the build's steps replayed outside Docker: the context as .dockerignore leaves it, the
  COPY steps, `pip install .` into a fresh virtual environment, then `fleetpulse` from it,
  and the HEALTHCHECK command against an exporter that this install serves.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path

import docker.errors
import pytest
from docker.utils.build import exclude_paths

from tests.deploy import dockerfile, tools
from tests.deploy.cli import API_PORT, DEPLOY, EXPORTER_PORT, REPO
from tests.support.docker_engine import engine_or_skip
from tests.support.require import missing

DOCKERFILE = DEPLOY / "Dockerfile"
SIMULATED_RUN = "pip install . && rm -rf /src"


@pytest.fixture(scope="module")
def steps() -> list[dockerfile.Instruction]:
    return dockerfile.parse(DOCKERFILE)


def context_files() -> set[str]:
    """The build context as the Docker client sends it, honouring .dockerignore."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return set(exclude_paths(str(REPO), patterns, dockerfile="deploy/Dockerfile"))


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    # every level fails, style included (hadolint's default lets style and info pass)
    return tools.run(
        "hadolint", ["--no-color", "--failure-threshold", "style", str(path)], cwd=REPO
    )


def test_hadolint_finds_nothing() -> None:
    done = hadolint(DOCKERFILE)
    assert done.returncode == 0 and not done.stdout.strip(), tools.report(done)


def test_hadolint_would_catch_a_root_user(tmp_path: Path) -> None:
    text = DOCKERFILE.read_text()
    assert "\nUSER 10001:10001\n" in text
    broken = tmp_path / "Dockerfile"
    broken.write_text(text.replace("\nUSER 10001:10001\n", "\nUSER root\n"))
    done = hadolint(broken)
    assert done.returncode != 0 and "DL3002" in done.stdout, tools.report(done)


def test_every_instruction_is_known_and_the_base_image_is_pinned(
    steps: list[dockerfile.Instruction],
) -> None:
    unknown = [f"{s.line}: {s.keyword}" for s in steps if s.keyword not in dockerfile.KNOWN]
    assert not unknown
    (base,) = [s.args for s in steps if s.keyword == "FROM"]
    name, _, tag = base.partition(":")
    assert name == "python" and re.fullmatch(r"3\.12(\.\d+)?-slim(-\w+)?", tag), base


def test_image_runs_fleetpulse_as_a_non_root_user(steps: list[dockerfile.Instruction]) -> None:
    (user,) = [s.args for s in steps if s.keyword == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    last_user = max(i for i, s in enumerate(steps) if s.keyword == "USER")
    # nothing after USER may need root
    assert not [s for s in steps[last_user:] if s.keyword in ("RUN", "ADD")]
    (entrypoint,) = [s.exec_form() for s in steps if s.keyword == "ENTRYPOINT"]
    assert entrypoint == ["fleetpulse"]
    (volume,) = [s.exec_form() for s in steps if s.keyword == "VOLUME"]
    assert volume == ["/data"]
    (expose,) = [s.args.split() for s in steps if s.keyword == "EXPOSE"]
    assert sorted(map(int, expose)) == [EXPORTER_PORT, API_PORT]


def test_healthcheck_asks_healthz_with_urllib(steps: list[dockerfile.Instruction]) -> None:
    command = dockerfile.healthcheck_command(steps)
    assert command[:2] == ["python", "-c"] and "urllib.request" in command[2]
    url = dockerfile.env_values(steps)["FLEETPULSE_HEALTHCHECK_URL"]
    assert url == f"http://127.0.0.1:{EXPORTER_PORT}/healthz"


def test_copy_sources_are_in_the_context_and_cover_every_installed_package(
    steps: list[dockerfile.Instruction],
) -> None:
    import tomllib

    files = context_files()
    copied = set()
    for step in steps:
        if step.keyword == "COPY":
            *sources, _ = step.args.split()
            for source in sources:
                assert any(f == source or f.startswith(source + "/") for f in files), source
                copied.add(source)
    for leaked in (".venv", ".git", "fleetpulse-data", "deploy/.env"):
        assert not any(f == leaked or f.startswith(leaked + "/") for f in files), leaked
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {
        p.parent.name
        for pattern in include
        for p in REPO.glob(f"{pattern.rstrip('*')}*/__init__.py")
        if p.parent.parent == REPO
    }
    assert packages and packages <= copied, packages - copied
    assert {"pyproject.toml", "README.md"} <= copied  # pyproject names README.md as readme


def test_docker_engine_parses_the_whole_file_and_stops_at_the_base_image_pull(
    steps: list[dockerfile.Instruction],
) -> None:
    engine = engine_or_skip()
    client = engine.client(timeout=60)
    try:
        output: list[str] = []
        try:
            # only the Dockerfile as context: the engine parses every instruction before
            # the first step, so a typo fails here even though no base image can be pulled
            for chunk in client.api.build(
                fileobj=io.BytesIO(DOCKERFILE.read_bytes()), rm=True, decode=True
            ):
                output.append(chunk.get("stream", "") + chunk.get("error", ""))
        except docker.errors.APIError as exc:
            pytest.fail(f"the engine refused the Dockerfile: {exc.explanation}")
    finally:
        client.close()
    text = "".join(output)
    assert f"Step 1/{len(steps)} : FROM " in text, text  # the engine counts what we count
    assert "parse error" not in text and "unknown instruction" not in text, text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def copy_source(files: set[str], source: str, dest: Path, into_folder: bool) -> None:
    """Docker's COPY: a folder's contents go to dest; a file to dest (or into it)."""
    if (REPO / source).is_dir():
        pairs = [
            (name, dest / Path(name).relative_to(source))
            for name in files
            if name.startswith(source + "/")
        ]
    else:
        pairs = [(source, dest / Path(source).name if into_folder else dest)]
    for name, out in pairs:
        if (REPO / name).is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, out)


def replay_build(steps: list[dockerfile.Instruction], root: Path, env_dir: Path) -> None:
    """COPY and WORKDIR into `root` (the image's /), the pip RUN into a virtual env."""
    files = context_files()
    workdir = root
    runs = [s.args for s in steps if s.keyword == "RUN"]
    assert runs[-1] == SIMULATED_RUN, runs
    # the other RUN makes the user and /data: nothing of it can be replayed without root
    # in a throw-away system, and the USER test above checks what it is for
    for step in steps:
        if step.keyword == "WORKDIR":
            workdir = root / step.args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif step.keyword == "COPY":
            *sources, target = step.args.split()
            dest = root / target.lstrip("/") if target.startswith("/") else workdir / target
            into_folder = len(sources) > 1 or target.endswith("/")
            for source in sources:
                copy_source(files, source, dest, into_folder)
        elif step.keyword == "RUN" and step.args == SIMULATED_RUN:
            venv.create(env_dir, with_pip=True)
            # the dependencies come from this test run's environment (a .pth line does not
            # load that environment's own .pth hooks, so the editable install stays out);
            # fleetpulse itself is built from the copied sources by pip with its build
            # backend, as in the image
            site = next(env_dir.glob("lib/python*/site-packages"), None) or (
                env_dir / "Lib" / "site-packages"
            )
            deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
            (site / "deps-of-the-test-run.pth").write_text("\n".join(deps) + "\n")
            done = subprocess.run(
                [str(bin_path(env_dir, "python")), "-m", "pip", "install", "--no-deps", "."],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if done.returncode != 0:
                tail = (done.stdout + done.stderr)[-3000:]
                if re.search(
                    r"No matching distribution|Could not find a version|NewConnectionError|Name or service not known",
                    tail,
                ):
                    missing(
                        f"pip could not fetch the build backend (setuptools) from the index:\n{tail}"
                    )
                pytest.fail(f"pip install . failed in the replayed build:\n{tail}")
            shutil.rmtree(workdir)  # `rm -rf /src`: the install must not need its sources


def bin_path(env_dir: Path, name: str) -> Path:
    scripts = env_dir / ("Scripts" if os.name == "nt" else "bin")
    return scripts / (name + (".exe" if os.name == "nt" else ""))


def test_replayed_build_installs_a_fleetpulse_whose_healthcheck_works(
    steps: list[dockerfile.Instruction], tmp_path: Path
) -> None:
    root, env_dir = tmp_path / "rootfs", tmp_path / "venv"
    replay_build(steps, root, env_dir)
    assert (root / "etc" / "fleetpulse" / "rules" / "thresholds.yaml").is_file()
    fleetpulse = bin_path(env_dir, "fleetpulse")
    python = bin_path(env_dir, "python")
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import exporter, collector, alerting, fleetpulse; "
            "print(*(m.__file__ for m in (exporter, collector, alerting, fleetpulse)))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert all(str(env_dir) in f for f in where.stdout.split()), where.stdout  # not the repo
    for command in (
        ["--help"],
        ["collector", "--help"],
        ["alerting", "--help"],
        ["influx", "setup", "--help"],
    ):
        done = subprocess.run(
            [str(fleetpulse), *command],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    port = free_port()
    check = dockerfile.healthcheck_command(steps)
    check_env = {**os.environ, "FLEETPULSE_HEALTHCHECK_URL": f"http://127.0.0.1:{port}/healthz"}
    argv = [str(python), *check[1:]]  # the image's `python` is the venv's

    def healthcheck() -> int:
        return subprocess.run(
            argv, env=check_env, capture_output=True, timeout=30, check=False
        ).returncode

    assert healthcheck() != 0  # nothing listens yet: unhealthy
    exporter = subprocess.Popen(
        [str(fleetpulse), "exporter", "--listen", f"127.0.0.1:{port}", "--disable", "containers"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while healthcheck() != 0:
            assert exporter.poll() is None, exporter.stderr.read() if exporter.stderr else ""
            assert time.monotonic() < deadline, "the exporter never became healthy"
            time.sleep(0.2)
    finally:
        exporter.terminate()
        try:
            exporter.wait(timeout=30)
        finally:
            if exporter.stderr:
                exporter.stderr.close()
