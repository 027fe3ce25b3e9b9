"""deploy/Dockerfile read: its instructions, its stages, its context, and hadolint.

tests/deploy/test_image.py builds it on the private engine and runs the image; these checks
need no engine: hadolint at every level; the instructions (known, the real base by default,
a non-root USER, HEALTHCHECK, ENTRYPOINT); the build stage and the image on the same base,
the build arguments the tests pass and what a plain build gets without them; the COPY
sources, which must be in the context as .dockerignore leaves it and cover every package
pyproject.toml installs.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.deploy import dockerfile, image, tools
from tests.deploy.cli import API_PORT, DEPLOY, EXPORTER_PORT, REPO

DOCKERFILE = DEPLOY / "Dockerfile"
REAL_BASE = "python:3.12-slim-bookworm"


@pytest.fixture(scope="module")
def steps() -> list[dockerfile.Instruction]:
    return dockerfile.parse(DOCKERFILE)


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


def test_every_instruction_is_known_and_the_base_is_the_real_image_by_default(
    steps: list[dockerfile.Instruction],
) -> None:
    unknown = [f"{s.line}: {s.keyword}" for s in steps if s.keyword not in dockerfile.KNOWN]
    assert not unknown
    # a plain `docker build` uses the real base; the tests pass a stand-in as BASE_IMAGE
    assert dockerfile.global_args(steps) == {"BASE_IMAGE": REAL_BASE}
    name, _, tag = REAL_BASE.partition(":")
    assert name == "python" and re.fullmatch(r"3\.12(\.\d+)?-slim(-\w+)?", tag), REAL_BASE


def test_the_image_and_its_build_stage_share_the_base(steps: list[dockerfile.Instruction]) -> None:
    build, final = dockerfile.stages(steps)
    assert build.base == final.base == "${BASE_IMAGE}"
    assert build.name == image.BUILD_TARGET and final.name is None  # the default target
    # what the tests give a build without network, and nothing a plain build needs: pip's
    # own defaults hold when these are not passed
    args = {s.args for s in build.steps if s.keyword == "ARG"}
    assert args == set(image.OFFLINE_BUILD_ARGS)
    copied = [s.args for s in final.steps if s.keyword == "COPY" and s.args.startswith("--from")]
    assert copied == [f"--from={image.BUILD_TARGET} /opt/fleetpulse /opt/fleetpulse"]
    assert dockerfile.env_values(final.steps)["PATH"] == "/opt/fleetpulse/bin:$PATH"


def test_image_runs_fleetpulse_as_a_non_root_user(steps: list[dockerfile.Instruction]) -> None:
    final = dockerfile.stages(steps)[-1].steps
    (user,) = [s.args for s in final if s.keyword == "USER"]
    assert user == "10001:10001"  # numeric: Kubernetes' runAsNonRoot can check it
    last_user = max(i for i, s in enumerate(final) if s.keyword == "USER")
    # nothing after USER may need root
    assert not [s for s in final[last_user:] if s.keyword in ("RUN", "ADD", "COPY")]
    (entrypoint,) = [s.exec_form() for s in final if s.keyword == "ENTRYPOINT"]
    assert entrypoint == ["fleetpulse"]
    (volume,) = [s.exec_form() for s in final if s.keyword == "VOLUME"]
    assert volume == ["/data"]
    (expose,) = [s.args.split() for s in final if s.keyword == "EXPOSE"]
    assert sorted(map(int, expose)) == [EXPORTER_PORT, API_PORT]


def test_healthcheck_asks_healthz_with_urllib(steps: list[dockerfile.Instruction]) -> None:
    command = dockerfile.healthcheck_command(steps)
    assert command[:2] == ["python", "-c"] and "urllib.request" in command[2]
    final = dockerfile.stages(steps)[-1].steps
    url = dockerfile.env_values(final)["FLEETPULSE_HEALTHCHECK_URL"]
    assert url == f"http://127.0.0.1:{EXPORTER_PORT}/healthz"


def test_copy_sources_are_in_the_context_and_cover_every_installed_package(
    steps: list[dockerfile.Instruction],
) -> None:
    files = image.context_files()
    copied = set()
    for step in steps:
        if step.keyword != "COPY" or step.args.startswith("--from"):
            continue
        *sources, _ = step.args.split()
        for source in sources:
            if source == image.WHEELHOUSE_PATTERN:
                # the tests' wheelhouse/: absent from the repository, so it copies nothing
                assert re.fullmatch(source.replace("[e]", "e"), image.WHEELHOUSE)
                assert image.WHEELHOUSE not in {f.split("/")[0] for f in files}
                continue
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
