"""deploy/Dockerfile built for real on the private engine, which has no registry and whose
builds have no network.

- The base cannot be pulled: a stand-in is made here, Debian bookworm with Debian's Python
  (`mmdebstrap` from the mirror apt uses), made to look like `python:*-slim` where the
  Dockerfile cares (`python` and `pip` in /usr/local/bin, from a venv at /usr/local;
  `groupadd` and `useradd`), brought in with `docker import` and passed as BASE_IMAGE. It is
  kept in the engine under a tag that is a hash of its recipe, so it is made once.
- The Python packages: `pip download` on this host fetches the wheels the base's Python
  needs (pip's cache makes a second time cheap) into a wheelhouse/ folder of a copy of the
  build context, and the build runs with PIP_NO_INDEX=1 and PIP_FIND_LINKS=/src and no
  network at all. Every step after FROM is the file's own.
- The build stage and the image are tagged, and what a tag pointed at before is removed,
  so the engine keeps one build cache (vfs copies every layer in full) and a second build
  of unchanged sources is all cache hits.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.utils.build import exclude_paths

from tests.deploy.cli import REPO
from tests.support.docker_engine import DockerEngine
from tests.support.require import missing

DOCKERFILE = "deploy/Dockerfile"
STANDIN_REPO = "fleetpulse-test/python-standin"
IMAGE = "fleetpulse-test/fleetpulse:latest"
BUILD_STAGE = "fleetpulse-test/fleetpulse-build:latest"
# the build stage's name: built and tagged first, so the engine keeps it as a cache
BUILD_TARGET = "build"
# what the tests pass to the build; the Dockerfile copies wheelhouse/ into /src, with a
# pattern that matches nothing in a plain build
WHEELHOUSE = "wheelhouse"
WHEELHOUSE_PATTERN = "wheelhous[e]"
OFFLINE_BUILD_ARGS = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/src"}
BUILD_TIMEOUT = 1200

# --- the stand-in base ----------------------------------------------------------------------

SUITE = "bookworm"
STANDIN_PACKAGES = ("passwd", "python3", "python3-venv")
MMDEBSTRAP_OPTIONS = (
    "--variant=essential",  # Essential: yes packages, then the ones named
    "--include=" + ",".join(STANDIN_PACKAGES),
    # merged /usr without the usrmerge package (which would pull in perl)
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    # a snapshot mirror's Release files may be past their Valid-Until
    '--aptopt=Acquire::Check-Valid-Until "false"',
    # as slim images do: no docs, man pages or translations
    *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale", "info")),
    # python and pip in /usr/local/bin, as in python:*-slim
    '--customize-hook=chroot "$1" python3 -m venv /usr/local',
)
STANDIN_CHANGES = (
    "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def apt_sources() -> Path:
    """The Debian mirror apt uses here (mmdebstrap reads the file as its mirror list)."""
    for path in APT_SOURCES:
        if path.is_file() and "debian" in path.read_text():
            return path
    missing(f"no Debian apt sources here ({', '.join(map(str, APT_SOURCES))})")
    raise AssertionError("unreachable")


def standin_tag(sources: Path) -> str:
    recipe = json.dumps(
        [SUITE, MMDEBSTRAP_OPTIONS, STANDIN_CHANGES, sources.read_text()], sort_keys=True
    )
    return f"{STANDIN_REPO}:{hashlib.sha256(recipe.encode()).hexdigest()[:16]}"


def has_image(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def standin_base(client: docker.DockerClient, workdir: Path) -> str:
    """The stand-in's tag, made (a minute or so, downloads ~40 MB of packages) if missing."""
    sources = apt_sources()
    tag = standin_tag(sources)
    if has_image(client, tag):
        return tag
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        missing("mmdebstrap is not installed (Debian mmdebstrap, .ci/install-deploy-checkers)")
        raise AssertionError("unreachable")
    if os.geteuid() != 0:
        missing("making the stand-in base image with mmdebstrap needs root")
    rootfs = workdir / "standin.tar"
    done = subprocess.run(
        [mmdebstrap, *MMDEBSTRAP_OPTIONS, SUITE, str(rootfs), str(sources)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        if re.search(
            r"Could not resolve|Failed to fetch|Temporary failure|Unable to connect", tail
        ):
            missing(f"mmdebstrap could not reach the Debian mirror in {sources}:\n{tail}")
        raise AssertionError(f"mmdebstrap failed (exit {done.returncode}):\n{tail}")
    repository, _, version = tag.partition(":")
    client.api.import_image_from_file(
        str(rootfs), repository=repository, tag=version, changes=list(STANDIN_CHANGES)
    )
    rootfs.unlink()
    # stand-ins of older recipes are of no use any more
    for old in client.images.list(name=STANDIN_REPO):
        if tag not in old.tags:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(old.id)
    return tag


# --- the wheels -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interpreter:
    """The Python of a base image, as pip's platform options name it."""

    version: str  # "3.11"
    abi: str  # "cp311"
    glibc: tuple[int, int]
    machine: str  # "x86_64"

    def platforms(self) -> list[str]:
        """Every manylinux tag this glibc runs (pip does not expand manylinux_2_N itself)."""
        major, minor = self.glibc
        assert major == 2, self.glibc
        tags = [f"manylinux_2_{m}_{self.machine}" for m in range(minor, 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags += [f"{name}_{self.machine}" for m, name in legacy.items() if m <= minor]
        return tags


PROBE = (
    "import json, platform, sys; "
    "print(json.dumps([f'{sys.version_info[0]}.{sys.version_info[1]}', "
    "sys.implementation.name, platform.libc_ver(), platform.machine()]))"
)


def interpreter_of(client: docker.DockerClient, base: str) -> Interpreter:
    output = client.containers.run(
        base, ["python", "-c", PROBE], remove=True, network_disabled=True
    )
    version, implementation, (libc, libc_version), machine = json.loads(output)
    assert implementation == "cpython" and libc == "glibc", output
    major, minor = (int(p) for p in libc_version.split(".")[:2])
    return Interpreter(version, "cp" + version.replace(".", ""), (major, minor), machine)


def requirements() -> list[str]:
    """What `pip install .` needs: the build backend and the project's dependencies."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    needed: list[str] = [*project["build-system"]["requires"], *project["project"]["dependencies"]]
    return needed


def download_wheels(python: Interpreter, dest: Path) -> None:
    platforms = [arg for tag in python.platforms() for arg in ("--platform", tag)]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            python.version,
            "--abi",
            python.abi,
            *platforms,
            "--dest",
            str(dest),
            *requirements(),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        if re.search(r"NewConnectionError|Name or service not known|Temporary failure", tail):
            missing(f"pip could not reach the package index for the image's wheels:\n{tail}")
        raise AssertionError(f"pip download of the image's wheels failed:\n{tail}")


# --- the build ------------------------------------------------------------------------------


def context_files() -> set[str]:
    """The build context as the Docker client sends it, honouring .dockerignore."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return set(exclude_paths(str(REPO), patterns, dockerfile=DOCKERFILE))


def build_context(dest: Path) -> Path:
    """A copy of the context (the wheelhouse goes beside it)."""
    for name in sorted(context_files()):
        source = REPO / name
        if source.is_file() and not source.is_symlink():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def build(
    client: docker.DockerClient, context: Path, tag: str, buildargs: dict[str, str], target: str
) -> str:
    """Build one target of the Dockerfile with no network; the image id."""
    log: list[str] = []
    for chunk in client.api.build(
        path=str(context),
        dockerfile=DOCKERFILE,
        tag=tag,
        target=target or None,
        buildargs=buildargs,
        network_mode="none",
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
        timeout=BUILD_TIMEOUT,
    ):
        log.append(str(chunk.get("stream", "")))
        if "error" in chunk:
            text = "".join(log)[-4000:]
            raise AssertionError(f"docker build failed: {chunk['error']}\n{text}")
    image_id: str = client.images.get(tag).id
    return image_id


def replace_tag(client: docker.DockerClient, tag: str, old_id: str | None, new_id: str) -> None:
    """Remove what `tag` named before the build (and its untagged parents), if unused."""
    if old_id and old_id != new_id:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(old_id)


def image_id(client: docker.DockerClient, tag: str) -> str | None:
    try:
        found: str = client.images.get(tag).id
    except docker.errors.ImageNotFound:
        return None
    return found


@contextlib.contextmanager
def build_lock(engine: DockerEngine) -> Iterator[None]:
    """One image build at a time on this engine (test runs share it)."""
    engine.directory.mkdir(parents=True, exist_ok=True)
    with (engine.directory / "fleetpulse-image.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class BuiltImage:
    tag: str
    id: str
    size: int  # bytes, as `docker images` shows (uncompressed)
    base: str
    base_size: int
    python: Interpreter


def build_image(engine: DockerEngine, workdir: Path) -> BuiltImage:
    """The stand-in base (made once), the wheels, then both stages of the Dockerfile."""
    with contextlib.closing(engine.client(timeout=BUILD_TIMEOUT)) as client, build_lock(engine):
        base = standin_base(client, workdir)
        python = interpreter_of(client, base)
        context = build_context(workdir / "context")
        download_wheels(python, context / WHEELHOUSE)
        buildargs = {"BASE_IMAGE": base, **OFFLINE_BUILD_ARGS}
        for tag, target in ((BUILD_STAGE, BUILD_TARGET), (IMAGE, "")):
            old = image_id(client, tag)
            new = build(client, context, tag, buildargs, target)
            replace_tag(client, tag, old, new)
        shutil.rmtree(context)
        image: Any = client.images.get(IMAGE)
        return BuiltImage(
            tag=IMAGE,
            id=image.id,
            size=int(image.attrs["Size"]),
            base=base,
            base_size=int(client.images.get(base).attrs["Size"]),
            python=python,
        )
