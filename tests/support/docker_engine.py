"""A real, private Docker engine for the tests (Debian ``docker.io``, vfs, no iptables).

``.ci/start-docker`` installs the engine when it is missing, starts a dockerd whose data
root, exec root, pidfile, socket and log all live in one directory (``/tmp/fleetpulse-docker``
unless ``FLEETPULSE_DOCKER_DIR`` says otherwise) and imports the test image
``fleetpulse-test/busybox:latest`` (Debian's ``busybox-static`` with every applet linked:
``sh``, ``sleep``, ``yes``, ``dd``, ``nc``, ``httpd``, ``ip``, ``ping``, ...). CI runs it
before the suite; :func:`engine_or_skip` runs it itself when it can.

Typical use::

    engine = engine_or_skip()
    with engine.sandbox("my-test") as box:
        net = box.create_network("net")
        busy = box.run_container("busy", "yes > /dev/null", network=net.name)
        stats = busy.stats(stream=False, one_shot=True)

Every container and network a :class:`DockerSandbox` makes has a unique name prefix and
the label ``org.fleetpulse.test=<sandbox token>``; ``cleanup()`` (or leaving the ``with``)
removes them. :func:`remove_labelled` sweeps what crashed test runs left behind.

The engine at the default directory is shared by every test process on the machine.
:meth:`DockerEngine.stop` on it disturbs them all, so tests that make the engine go away
should use :func:`private_engine`, a throw-away engine of their own.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import docker
import pytest
from docker.models.containers import Container
from docker.models.networks import Network
from docker.transport.unixconn import UnixHTTPConnection

from tests.support.require import missing

REPO_ROOT = Path(__file__).resolve().parents[2]
START_SCRIPT = REPO_ROOT / ".ci" / "start-docker"
DEFAULT_DIR = Path("/tmp/fleetpulse-docker")
TEST_IMAGE = "fleetpulse-test/busybox:latest"
TEST_LABEL = "org.fleetpulse.test"
DOCKERD = Path("/usr/sbin/dockerd")
API_VERSION = "1.41"  # Debian bookworm's docker.io 20.10; one_shot stats need 1.41


class DockerEngineError(RuntimeError):
    """The private engine could not be started, stopped or reached."""


def default_dir() -> Path:
    return Path(os.environ.get("FLEETPULSE_DOCKER_DIR") or DEFAULT_DIR)


class DockerEngine:
    """The private dockerd whose state lives in ``directory``.

    ``start()`` runs ``.ci/start-docker`` (the one place where the dockerd flags are), so
    it is idempotent and also rebuilds the test image when the engine lacks it.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        image: str = TEST_IMAGE,
        bridge: str | None = None,
        start_timeout: float = 90.0,
    ) -> None:
        self.directory = Path(directory) if directory is not None else default_dir()
        self.image = image
        # the default bridge (dockerd --bridge): None is Docker's docker0 unless
        # FLEETPULSE_DOCKER_BRIDGE names another; a second engine on the machine needs a name
        # of its own (<= 15 chars, created by .ci/start-docker when missing)
        self.bridge = bridge if bridge is not None else os.environ.get("FLEETPULSE_DOCKER_BRIDGE")
        self.start_timeout = start_timeout

    def __repr__(self) -> str:
        return f"DockerEngine({str(self.directory)!r}, url={self.url!r})"

    # --- where things are -----------------------------------------------------------------

    @property
    def socket_path(self) -> Path:
        return self.directory / "docker.sock"

    @property
    def url(self) -> str:
        """The ``DOCKER_HOST`` value of this engine."""
        return f"unix://{self.socket_path}"

    @property
    def pidfile(self) -> Path:
        return self.directory / "dockerd.pid"

    @property
    def log_path(self) -> Path:
        return self.directory / "dockerd.log"

    # --- clients --------------------------------------------------------------------------

    def client(self, timeout: float = 30.0, version: str = API_VERSION) -> docker.DockerClient:
        """A client of this engine; close it (``close()``, or ``contextlib.closing``).

        The API version is pinned (no round trip at creation), so a client can be made
        while the engine is down; it then fails on its first call.
        """
        return docker.DockerClient(base_url=self.url, version=version, timeout=timeout)

    def _http_get(self, path: str, timeout: float) -> int:
        """Status of a GET on the engine's socket, without docker-py (nothing left open)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.socket_path))
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
            head = sock.recv(64).decode("latin-1")
        parts = head.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise DockerEngineError(f"unexpected answer from {self.url}: {head!r}")
        return int(parts[1])

    def is_running(self, timeout: float = 5.0) -> bool:
        """True when the engine answers ``/_ping`` on its socket."""
        try:
            return self._http_get("/_ping", timeout) == 200
        except (OSError, DockerEngineError):
            return False

    def has_image(self, timeout: float = 5.0) -> bool:
        try:
            path = f"/v{API_VERSION}/images/{quote(self.image, safe='')}/json"
            return self._http_get(path, timeout) == 200
        except (OSError, DockerEngineError):
            return False

    def is_ready(self) -> bool:
        return self.is_running() and self.has_image()

    # --- the daemon process ---------------------------------------------------------------

    def dockerd_pid(self) -> int | None:
        """The pid of this engine's dockerd if it is alive, else None."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid, "dockerd") else None

    def start(self, timeout: float | None = None) -> None:
        """Start the engine (if it does not answer) and make sure the test image is there.

        After :meth:`stop` this brings the same engine back: dockerd starts a new containerd,
        finds the containers that outlived it and, live-restore being off, stops them (they
        show as exited, exit code 137 or 143, and can be started or removed as usual).
        """
        env = dict(os.environ)
        env["FLEETPULSE_DOCKER_DIR"] = str(self.directory)
        env["FLEETPULSE_DOCKER_IMAGE"] = self.image
        env["FLEETPULSE_DOCKER_START_TIMEOUT"] = str(int(timeout or self.start_timeout))
        if self.bridge is None:
            env.pop("FLEETPULSE_DOCKER_BRIDGE", None)
        else:
            env["FLEETPULSE_DOCKER_BRIDGE"] = self.bridge
        try:
            done = subprocess.run(
                ["bash", str(START_SCRIPT)],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=(timeout or self.start_timeout) + 600,  # apt-get may have to run
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DockerEngineError(f"{START_SCRIPT} timed out after {exc.timeout:.0f}s") from exc
        if done.returncode != 0:
            raise DockerEngineError(
                f"{START_SCRIPT} failed (exit {done.returncode}):\n{_tail(done.stderr, 60)}"
            )
        if not self.is_running():
            raise DockerEngineError(f"{START_SCRIPT} succeeded but {self.url} does not answer")

    def stop(self, *, graceful: bool = False, timeout: float = 60.0) -> None:
        """Make the engine go away.

        By default dockerd is killed (SIGKILL), as in a crash: its socket stops answering
        at once (connections are refused, the socket file stays), the containerd it manages
        dies with it, and the running containers and their shims stay alive until the next
        :meth:`start`. ``graceful=True`` sends SIGTERM instead: dockerd stops the containers
        (SIGTERM, then SIGKILL after their stop timeout) and containerd before it exits.
        Returns once the dockerd process is gone.
        """
        pid = self.dockerd_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM if graceful else signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while _alive(pid, "dockerd"):
            if time.monotonic() > deadline:
                raise DockerEngineError(f"dockerd {pid} still alive {timeout:.0f}s after kill")
            time.sleep(0.05)

    def restart(self, *, graceful: bool = False) -> None:
        self.stop(graceful=graceful)
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except OSError:
            return ""

    # --- test resources ---------------------------------------------------------------------

    def sandbox(self, name: str = "test", *, timeout: float = 30.0) -> DockerSandbox:
        """A :class:`DockerSandbox` on this engine (use it as a context manager)."""
        return DockerSandbox(self, name, timeout=timeout)


class DockerSandbox:
    """Labelled containers and networks of one test, removed together by :meth:`cleanup`.

    Names are ``fp-<name>-<token>-<short name>`` so that concurrent test runs on the
    shared engine never collide; the label ``org.fleetpulse.test`` holds the token.
    """

    def __init__(self, engine: DockerEngine, name: str = "test", *, timeout: float = 30.0) -> None:
        self.engine = engine
        self.token = secrets.token_hex(4)
        slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:24] or "t"
        self.prefix = f"fp-{slug}-{self.token}"
        self.labels = {TEST_LABEL: self.token}
        self.client = engine.client(timeout=timeout)
        self.containers: list[Container] = []
        self.networks: list[Network] = []

    def __enter__(self) -> DockerSandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def full_name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def create_network(self, name: str = "net", **kwargs: Any) -> Network:
        """A user-defined bridge network (containers on it get an ``eth0``, and DNS names)."""
        kwargs.setdefault("driver", "bridge")
        labels = {**self.labels, **kwargs.pop("labels", {})}
        network = self.client.networks.create(self.full_name(name), labels=labels, **kwargs)
        self.networks.append(network)
        return network

    def run_container(
        self,
        name: str,
        cmd: str | Sequence[str] | None = None,
        *,
        network: str | Network | None = None,
        image: str | None = None,
        wait_running: bool = True,
        **kwargs: Any,
    ) -> Container:
        """Run a detached, labelled container of the test image.

        ``cmd`` as a string runs under ``sh -c``; a sequence is the argv. The container runs
        with ``init=True`` (docker-init as pid 1, so SIGTERM stops it promptly) unless told
        otherwise; other keyword arguments go to ``containers.run``. Its DNS name on
        ``network`` is the short ``name``. With ``wait_running`` the container is reloaded
        until it is running (a command that exits at once raises).
        """
        command: list[str] | None
        if cmd is None:
            command = None
        elif isinstance(cmd, str):
            command = ["sh", "-c", cmd]
        else:
            command = list(cmd)
        network_name = network.name if isinstance(network, Network) else network
        kwargs.setdefault("init", True)
        labels = {**self.labels, **kwargs.pop("labels", {})}
        if network_name is not None:
            kwargs["network"] = network_name
            kwargs.setdefault("hostname", name)
            # the short name as a DNS alias on the network
            endpoint = self.client.api.create_endpoint_config(aliases=[name])
            kwargs.setdefault("networking_config", {network_name: endpoint})
        container = self.client.containers.run(
            image or self.engine.image,
            command,
            name=self.full_name(name),
            detach=True,
            labels=labels,
            **kwargs,
        )
        self.containers.append(container)
        if wait_running:
            wait_for_status(container, "running")
        return container

    def cleanup(self) -> None:
        """Remove (forcibly) this sandbox's containers and networks, then close the client.

        Works by label, so it also finds what was made through another client. Errors of
        an engine that is down are ignored: there is nothing left to remove then.
        """
        try:
            remove_labelled(self.client, self.token)
        except (docker.errors.DockerException, OSError):
            pass
        finally:
            self.client.close()


def wait_for_status(container: Container, status: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        if container.status == status:
            return
        if status == "running" and container.status in ("exited", "dead"):
            logs = container.logs(tail=20).decode(errors="replace")
            raise DockerEngineError(
                f"container {container.name} is {container.status}, not running:\n{logs}"
            )
        if time.monotonic() > deadline:
            raise DockerEngineError(
                f"container {container.name} is still {container.status} after {timeout:.0f}s"
            )
        time.sleep(0.05)


def remove_labelled(client: docker.DockerClient, token: str | None = None) -> None:
    """Remove test containers and networks: those of sandbox ``token``, or all when None."""
    label = TEST_LABEL if token is None else f"{TEST_LABEL}={token}"
    for container in client.containers.list(all=True, filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
    for network in client.networks.list(filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()


def engine_or_skip(directory: str | os.PathLike[str] | None = None) -> DockerEngine:
    """The private engine, ready (answering, with the test image), or skip the test.

    Uses the engine ``.ci/start-docker`` started when it answers; otherwise, as root with
    Debian's dockerd installed, runs ``.ci/start-docker`` itself; otherwise the part is
    missing (a skip, or a failure under ``FLEETPULSE_REQUIRE_ALL=1``).
    """
    engine = DockerEngine(directory)
    if engine.is_ready():
        return engine
    if os.geteuid() != 0:
        missing(
            f"private Docker engine not answering at {engine.url}; "
            f"start it as root with {START_SCRIPT}"
        )
    if not DOCKERD.exists():
        missing(f"Debian's dockerd ({DOCKERD}) is not installed; run {START_SCRIPT} as root")
    try:
        engine.start()
    except DockerEngineError as exc:
        missing(f"private Docker engine could not be started: {exc}")
    if not engine.is_ready():
        missing(f"private Docker engine at {engine.url} started but is not ready")
    return engine


@contextlib.contextmanager
def private_engine(name: str = "fp") -> Iterator[DockerEngine]:
    """A throw-away engine of one's own (for tests that stop, kill or restart it).

    Its state lives in a new directory under /tmp (short: unix socket paths are limited);
    its default bridge is an interface of its own (``fpdk<hex>``, not the shared engine's
    ``docker0``). Everything (containers, state, bridge) is removed on exit. Needs root
    and Debian's dockerd.
    """
    if os.geteuid() != 0 or not DOCKERD.exists():
        missing("a private Docker engine needs root and Debian's dockerd")
    directory = Path(tempfile.mkdtemp(prefix=f"{name[:8]}-dk-", dir="/tmp"))
    engine = DockerEngine(directory, bridge=f"fpdk{secrets.token_hex(3)}")
    try:
        engine.start()
        yield engine
    finally:
        destroy(engine)


def destroy(engine: DockerEngine) -> None:
    """Stop ``engine`` with its containers and delete its directory (see private_engine)."""
    with contextlib.suppress(DockerEngineError):
        if not engine.is_running() and engine.dockerd_pid() is None:
            # killed by the test: its containers outlived it, bring it back to stop them
            engine.start()
    if engine.is_running():
        with (
            contextlib.closing(engine.client(timeout=60)) as client,
            contextlib.suppress(docker.errors.DockerException),
        ):
            for container in client.containers.list(all=True):
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True, v=True)
            for network in client.networks.list():
                if network.name not in ("bridge", "host", "none"):
                    with contextlib.suppress(docker.errors.DockerException):
                        network.remove()
    with contextlib.suppress(DockerEngineError):
        engine.stop(graceful=True)
    _unmount_below(engine.directory)
    shutil.rmtree(engine.directory, ignore_errors=True)
    if engine.bridge and engine.bridge != "docker0":
        subprocess.run(["ip", "link", "del", engine.bridge], capture_output=True, check=False)


def _connect_closing_on_error(self: UnixHTTPConnection) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(self.timeout)
        sock.connect(self.unix_socket)
    except BaseException:
        sock.close()
        raise
    self.sock = sock


def close_sockets_of_failed_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make docker-py close its socket when connecting to the engine fails.

    docker-py 7.2 ``UnixHTTPConnection.connect`` leaks the socket when the engine does not
    answer (ECONNREFUSED after a kill, ENOENT when the socket is gone): a ResourceWarning
    that, under ``filterwarnings = error``, fails whichever test is running when the socket
    is collected. Fixed upstream in docker/docker-py#3356 (open). Tests that talk to an
    engine that is down call this first (it is undone with ``monkeypatch``).
    """
    monkeypatch.setattr(UnixHTTPConnection, "connect", _connect_closing_on_error)


def _unmount_below(directory: Path) -> None:
    """Unmount what dockerd left mounted under ``directory`` (its data root, netns files)."""
    prefix = str(directory.resolve()) + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = [line.split()[4] for line in lines if len(line.split()) > 4]
    for point in sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _alive(pid: int, comm: str) -> bool:
    """True when ``pid`` is a live (not zombie) process named ``comm``."""
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != comm:
            return False
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])
