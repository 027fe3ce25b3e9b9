"""The image of deploy/Dockerfile, built on the private engine and run as the deploy files
run it.

The build (tests/deploy/image.py) uses a stand-in base and wheels fetched on this host,
because the engine has no registry and its builds no network; every step after FROM is the
Dockerfile's own. Then, each against the private engine:
- what the image holds: the base, the venv, the rules and the user; no build leftovers;
- the exporter, started with what docker-compose.agent.yml declares (read from the file),
  scraped: this host's file system, the engine's containers, the host's namespaces;
- `fleetpulse up` with its data dir on a volume, stopped and started again: the history
  is still there;
- in both, the image's HEALTHCHECK turns healthy, the process runs as uid 10001 and the
  root file system is read-only.
The engine runs without iptables: containers are reached on their bridge IP, or on this
host's loopback when they share its network.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from docker.models.containers import Container
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy import compose, dockerfile, image
from tests.deploy.cli import DEPLOY, invocation, parse
from tests.support.docker_engine import DockerEngine, DockerSandbox
from tests.support.poll import eventually_sync
from tests.support.require import missing

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

AGENT = "docker-compose.agent.yml"
UID = 10001
MB = 1_000_000
# the target for the image; node_exporter's is ~25 MB, Telegraf's ~250 MB
SIZE_TARGET = 200 * MB
SECOND_NS = 1_000_000_000


@pytest.fixture(scope="module")
def built(engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> image.BuiltImage:
    return image.build_image(engine, tmp_path_factory.mktemp("image-build"))


# --- helpers --------------------------------------------------------------------------------


def get(url: str) -> str | None:
    """The body of a 200 answer, None while nothing (or something else) answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            body: bytes = answer.read()
            return body.decode()
    except (OSError, urllib.error.URLError):
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        port: int = sock.getsockname()[1]
        return port


def samples(exposition: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == name
    ]


def health(container: Container) -> str | None:
    """The health status once it is `healthy`, None before; fails on `unhealthy`."""
    container.reload()
    status: str = container.attrs["State"]["Health"]["Status"]
    assert status != "unhealthy", container.attrs["State"]["Health"]["Log"][-3:]
    return status if status == "healthy" else None


# the image's own HEALTHCHECK command and timeouts, checked every second instead of every 30 s
FAST_HEALTHCHECK = {"interval": SECOND_NS}


def uses_image_healthcheck(container: Container) -> None:
    steps = dockerfile.parse(DEPLOY / "Dockerfile")
    test = container.attrs["Config"]["Healthcheck"]["Test"]
    assert test == ["CMD", *dockerfile.healthcheck_command(steps)], test


def process_ids(pid: int) -> tuple[int, int]:
    """Real uid and gid of a process, seen from this host."""
    status = Path(f"/proc/{pid}/status").read_text()
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M)
    gid = re.search(r"^Gid:\s+(\d+)", status, re.M)
    assert uid and gid, status
    return int(uid.group(1)), int(gid.group(1))


def runs_as_the_image_user_on_a_read_only_root(container: Container) -> None:
    container.reload()
    assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert process_ids(container.attrs["State"]["Pid"]) == (UID, UID)
    for path in ("/opt/fleetpulse/x", "/etc/fleetpulse/x", "/x"):
        # as root: only the read-only mount can refuse it
        code, output = container.exec_run(["sh", "-c", f"echo x > {path}"], user="0")
        assert code != 0 and b"Read-only file system" in output, (path, output)


def mount_propagation(mount_point: str) -> str:
    """shared, slave or private: the propagation of the mount at `mount_point` here."""
    kind = "private"
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == mount_point:  # the last mount on a point is the visible one
            optional = fields[6 : fields.index("-")]
            kind = (
                "shared"
                if any(f.startswith("shared:") for f in optional)
                else "slave"
                if any(f.startswith("master:") for f in optional)
                else "private"
            )
    return kind


@contextlib.contextmanager
def host_root() -> Iterator[str]:
    """A source for the agent's `/:/host:ro,rslave`.

    Docker refuses rslave unless the source's mount is shared or slave. Under systemd `/` is
    shared; inside a container (this machine) it may be private. Then the source is a
    recursive bind of `/`, made shared and unmounted afterwards: the same file systems at
    the same places, without changing `/` for everyone else.
    """
    if mount_propagation("/") != "private":
        yield "/"
        return
    if os.geteuid() != 0:
        missing("`/` is a private mount here and only root can bind it shared for /host")
    folder = tempfile.mkdtemp(prefix="fp-hostroot-", dir="/tmp")
    try:
        subprocess.run(["mount", "--rbind", "/", folder], check=True, capture_output=True)
        try:
            subprocess.run(["mount", "--make-shared", folder], check=True, capture_output=True)
            yield folder
        finally:
            subprocess.run(["umount", "-R", "-l", folder], check=False, capture_output=True)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def root_device() -> str:
    """The device of this host's root file system, as psutil names it."""
    (device,) = [
        line.split(" - ")[1].split()[1]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4] == "/"
    ][-1:]
    return device


def with_port(address: str, port: int) -> str:
    return re.sub(r":\d+(?=$|/)", f":{port}", address, count=1)


# compose keys of the agent's service and what docker run calls them; a key missing here
# fails the test, so a new setting in the compose file cannot be silently left out
SAME_MEANING = {
    "pid": "pid_mode",
    "network_mode": "network_mode",
    "user": "user",
    "group_add": "group_add",
    "read_only": "read_only",
    "cap_drop": "cap_drop",
    "cap_add": "cap_add",
    "security_opt": "security_opt",
    "environment": "environment",
}
HANDLED = {"image", "build", "restart", "command", "tmpfs", "volumes"}


def agent_run_options(
    service: dict[str, Any], sources: dict[str, str], port: int
) -> tuple[list[str], dict[str, Any]]:
    """The command and `containers.run` options of the compose service, as compose would
    create the container; `sources` replaces bind sources, `port` the listening port."""
    unknown = set(service) - set(SAME_MEANING) - HANDLED
    assert not unknown, f"{AGENT}: teach this test what {sorted(unknown)} means"
    options: dict[str, Any] = {SAME_MEANING[k]: v for k, v in service.items() if k in SAME_MEANING}
    command = compose.command(service)
    listen = invocation(AGENT, command).value("--listen")
    assert listen, command
    command = [with_port(listen, port) if arg == listen else arg for arg in command]
    options["environment"] = {
        key: with_port(str(value), port) if key == "FLEETPULSE_HEALTHCHECK_URL" else str(value)
        for key, value in service.get("environment", {}).items()
    }
    options["group_add"] = [str(g) for g in service.get("group_add", [])]
    options["tmpfs"] = {path: "" for path in service.get("tmpfs", [])}
    options["volumes"] = [
        f"{sources.get(source, source)}:{target}:{mode}"
        for target, (source, mode) in compose.mounts(service).items()
    ]
    if "restart" in service:
        options["restart_policy"] = {"Name": service["restart"]}
    return command, options


# --- what the image holds -------------------------------------------------------------------

LIST_FILES = (
    "import json, os; "
    "print(json.dumps(sorted(os.path.join(r, n) for top in ('/etc', '/opt', '/root', '/src', "
    "'/data', '/usr', '/var', '/tmp', '/home') for r, ds, fs in os.walk(top) for n in ds + fs)))"
)


def files_of(engine: DockerEngine, name: str) -> set[str]:
    with contextlib.closing(engine.client(timeout=120)) as client:
        container = client.containers.create(
            name,
            ["-c", LIST_FILES],
            entrypoint="python",
            user="0",
            network_disabled=True,
            labels={"org.fleetpulse.test": "image-files"},
        )
        try:
            container.start()
            assert container.wait(timeout=120)["StatusCode"] == 0, container.logs()
            output: bytes = container.logs(stdout=True, stderr=False)
        finally:
            container.remove(v=True, force=True)  # with the anonymous volume of /data
    found: list[str] = json.loads(output)
    return set(found)


def test_image_is_the_base_plus_the_venv_the_rules_and_the_user(
    engine: DockerEngine, built: image.BuiltImage
) -> None:
    """No sources, wheels, pip cache, pip or build backend are left in the image."""
    added = files_of(engine, built.tag) - files_of(engine, built.base)
    outside = {
        path
        for path in added
        if not path.startswith(("/opt/fleetpulse/", "/etc/fleetpulse/"))
        and path not in ("/opt/fleetpulse", "/etc/fleetpulse", "/data")
    }
    # useradd's backups of the user database
    assert outside <= {"/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-"}, outside
    site = f"/opt/fleetpulse/lib/python{built.python.version}/site-packages/"
    packages = {p[len(site) :].split("/")[0] for p in added if p.startswith(site)}
    for name in ("fleetpulse", "exporter", "collector", "alerting", "grafana", "aiohttp"):
        assert name in packages, sorted(packages)
    leftovers = {p for p in packages if re.match(r"(pip|setuptools|wheel)([-_.]|$)", p)}
    assert not leftovers, leftovers
    assert not [p for p in added if p.endswith(".whl")]
    assert "/etc/fleetpulse/rules/thresholds.yaml" in added


def test_image_size_is_within_the_target(built: image.BuiltImage) -> None:
    """The stand-in base weighs about what python:3.12-slim-bookworm does; what fleetpulse
    adds (the venv, the rules, the user) is the part this repository controls."""
    assert built.size <= SIZE_TARGET, f"{built.size / MB:.1f} MB"
    added = built.size - built.base_size
    assert added <= SIZE_TARGET - built.base_size, f"fleetpulse adds {added / MB:.1f} MB"


# --- the exporter, as the agent compose file runs it ----------------------------------------


def test_agent_exporter_sees_this_host_and_the_engines_containers(
    engine: DockerEngine, built: image.BuiltImage, tmp_path: Path
) -> None:
    env = compose.env_file(DEPLOY / ".env.example")
    env["FLEETPULSE_IMAGE"] = built.tag
    env["DOCKER_GID"] = str(engine.socket_path.stat().st_gid)  # as .env.example says to
    service = compose.interpolate_tree(compose.load(AGENT), env)["services"]["exporter"]
    assert service["image"] == built.tag
    # 9184 may be taken on a shared machine, and the container is in the host's network
    port = free_port()
    with host_root() as root, engine.sandbox("agent") as box:
        seen = box.run_container("seen", "sleep 600")
        command, options = agent_run_options(
            service, {"/var/run/docker.sock": str(engine.socket_path), "/": root}, port
        )
        parse(invocation(AGENT, command))  # what runs is what the CLI accepts
        exporter = box.run_container(
            "exporter",
            command,
            image=built.tag,
            init=False,
            healthcheck=FAST_HEALTHCHECK,
            **options,
        )

        def exposition() -> str | None:
            text = get(f"http://127.0.0.1:{port}/metrics")
            return text if text and f'container="{seen.name}"' in text else None

        text = eventually_sync(
            exposition, f"{seen.name} in the exporter's /metrics", within=60, every=0.5
        )

        # this host's root file system: its device, with the size this host sees. The
        # exporter keeps one mountpoint per device, the shortest: /host where the engine's
        # storage is overlay, but "/" here, where the vfs driver makes the container's root
        # a directory of the same device
        device = root_device()
        disks = {
            labels["device"]: (labels["mountpoint"], value)
            for labels, value in samples(text, "host_disk_total_bytes")
        }
        fs = os.statvfs("/")
        assert disks.get(device) in (
            ("/host", fs.f_blocks * fs.f_frsize),
            ("/", fs.f_blocks * fs.f_frsize),
        ), (device, disks)
        # and the host's files at /host, read-only
        marker = tmp_path / "marker"
        marker.write_text("this host\n")
        code, output = exporter.exec_run(["cat", f"/host{marker}"], user="0")
        assert (code, output) == (0, b"this host\n"), output
        code, output = exporter.exec_run(["sh", "-c", f"echo x > /host{marker}"], user="0")
        assert code != 0 and b"Read-only file system" in output, output
        # the engine's running containers, the exporter itself among them
        up = {labels["container"]: value for labels, value in samples(text, "container_up")}
        assert up.get(seen.name) == 1.0 and up.get(exporter.name) == 1.0, up
        # pid: host and network_mode: host: the host's namespaces
        pid = exporter.attrs["State"]["Pid"]
        for namespace in ("pid", "net"):
            assert os.readlink(f"/proc/{pid}/ns/{namespace}") == os.readlink(
                f"/proc/self/ns/{namespace}"
            ), namespace

        uses_image_healthcheck(exporter)
        eventually_sync(
            lambda: health(exporter), "the exporter's healthcheck", within=60, every=0.5
        )
        runs_as_the_image_user_on_a_read_only_root(exporter)
        assert exporter.attrs["HostConfig"]["CapDrop"] == ["ALL"]


# --- fleetpulse up, with its data on a volume -----------------------------------------------


def history(address: str, host: str) -> list[list[float]] | None:
    """The stored points of host_memory_usage_percent, None until there are some."""
    body = get(
        f"http://{address}/api/v1/hosts/{host}/metrics/history"
        "?metric=host_memory_usage_percent&start=-1h"
    )
    if body is None:
        return None
    series = json.loads(body)["series"]
    points: list[list[float]] = [p for s in series for p in s["points"]]
    return points or None


HOST = "fleetpulse-up"  # the container's hostname: the local exporter's host label


# at the place the deploy files mount theirs, so its rules are the image's /etc/fleetpulse/rules;
# scraped every 2 s rather than 15 s to keep the test short
UP_CONFIG = """\
scrape: {interval: 2s}
exporter:
  interval: 2s
  containers: {enabled: false}  # no engine inside this container
"""
CONTAINER_CONFIG = "/etc/fleetpulse/fleetpulse.yaml"


def run_up(
    box: DockerSandbox, name: str, built: image.BuiltImage, volume: str, config: Path
) -> Container:
    return box.run_container(
        name,
        ["up", "-c", CONTAINER_CONFIG, "--api-listen", "0.0.0.0:9185"],
        image=built.tag,
        init=False,
        hostname=HOST,  # the same in both runs
        read_only=True,
        tmpfs={"/tmp": ""},
        volumes={
            volume: {"bind": "/data", "mode": "rw"},  # the image's WORKDIR and VOLUME
            str(config): {"bind": CONTAINER_CONFIG, "mode": "ro"},
        },
        healthcheck=FAST_HEALTHCHECK,
    )


def api_address(container: Container) -> str:
    container.reload()
    ip = container.attrs["NetworkSettings"]["IPAddress"]
    assert ip, container.attrs["NetworkSettings"]
    return f"{ip}:9185"


def test_up_keeps_its_history_on_the_data_volume_across_a_restart(
    engine: DockerEngine, built: image.BuiltImage, tmp_path: Path
) -> None:
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(UP_CONFIG)
    config.chmod(0o644)
    with contextlib.closing(engine.client()) as client:
        volume = client.volumes.create(f"fp-up-data-{os.getpid()}-{time.monotonic_ns()}")
        try:
            with engine.sandbox("up") as box:
                first = run_up(box, "first", built, volume.name, config)
                address = api_address(first)
                before = eventually_sync(
                    lambda: history(address, HOST), "stored points", within=60, every=0.5
                )
                uses_image_healthcheck(first)
                eventually_sync(
                    lambda: health(first), "the healthcheck of fleetpulse up", within=60, every=0.5
                )
                runs_as_the_image_user_on_a_read_only_root(first)
                banner = first.logs(stdout=True, stderr=False).decode()
                assert "(/etc/fleetpulse/rules)" in banner, banner  # the image's rules

                first.stop(timeout=30)  # SIGTERM: fleetpulse up closes the store and exits
                first.reload()
                assert first.attrs["State"]["ExitCode"] == 0, first.logs(tail=20).decode()
                first.remove()
                restarted_ms = time.time() * 1000

                second = run_up(box, "second", built, volume.name, config)
                address = api_address(second)
                after = eventually_sync(
                    lambda: history(address, HOST), "the API after a restart", within=60, every=0.5
                )
                assert {tuple(p) for p in before} <= {tuple(p) for p in after}, (before, after)

                def new_points() -> list[list[float]] | None:
                    points = [p for p in history(address, HOST) or [] if p[0] > restarted_ms]
                    return points or None

                eventually_sync(
                    new_points, "a point stored after the restart", within=60, every=0.5
                )
        finally:
            with contextlib.suppress(docker.errors.APIError):
                volume.remove(force=True)
