"""The read-only Docker Engine API calls the exporter makes, on the standard library.

The exporter asks for the engine's version, lists containers, inspects them and takes
one-shot stats; nothing else. The
docker SDK did that through requests, urllib3 and charset_normalizer, which added ~8 MiB to
the exporter's resident memory, a sixth of its 50 MB budget (docs/exporter.md). `http.client`
is loaded anyway (prometheus_client's exposition module imports it), so these calls cost no
imports. The tests still drive the engine through the docker SDK, which checks this client
against the official one.

Addresses are the ones DOCKER_HOST takes: `unix:///path`, `tcp://host:port` (TLS from
DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the docker CLI reads them), `http(s)://host:port`
and, on Windows, `npipe:////./pipe/name`. Every connection belongs to one thread and is kept
alive between calls, so a pool of threads makes concurrent calls without a lock.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlencode, urlsplit

# The oldest API with `one-shot` stats; an older engine gets the two-sample stats call.
ONE_SHOT_API = (1, 41)


class EngineError(Exception):
    """The engine answered, with an error status (a container removed meanwhile: 404)."""

    def __init__(self, status: int, path: str, message: str) -> None:
        super().__init__(f"docker engine answered {status} to GET {path}: {message}")
        self.status = status


class EngineAddressError(ValueError):
    """An engine address this client cannot use (or its TLS files cannot be read); the
    message says what would work."""


def api_version_at_least(version: str, wanted: tuple[int, int]) -> bool:
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= wanted


def tls_context(environ: Mapping[str, str]) -> ssl.SSLContext | None:
    """TLS as the docker CLI sets it up from the environment, or None for plain HTTP.

    DOCKER_CERT_PATH (default ~/.docker) holds ca.pem, cert.pem and key.pem. TLS is on when
    DOCKER_TLS_VERIFY or DOCKER_CERT_PATH is set; the server is verified against ca.pem only
    with DOCKER_TLS_VERIFY, as in the CLI and the docker SDK.
    """
    verify = environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    cert_path = environ.get("DOCKER_CERT_PATH", "")
    if not verify and not cert_path:
        return None
    folder = Path(cert_path or Path.home() / ".docker")
    try:
        if verify:
            context = ssl.create_default_context(cafile=str(folder / "ca.pem"))
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if (folder / "cert.pem").exists():
            context.load_cert_chain(str(folder / "cert.pem"), str(folder / "key.pem"))
    except (OSError, ssl.SSLError) as exc:
        raise EngineAddressError(
            f"cannot load the Docker TLS files from {folder} (DOCKER_CERT_PATH, "
            f"DOCKER_TLS_VERIFY): {exc}"
        ) from None
    return context


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _KeepOpen(io.RawIOBase):
    """The read side of a pipe handle for one response: closing it leaves the pipe open,
    as closing a socket's makefile() leaves the socket open, so the connection is reused."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        return size


class PipeSocket:
    """Enough of a socket for http.client over a file handle (a Windows named pipe)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._handle.write(view)
            view = view[written or len(view) :]
        self._handle.flush()

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_KeepOpen(self._handle))

    def settimeout(self, timeout: float | None) -> None:
        """Pipe handles have no timeout: a stuck call holds its pool thread, but the
        collection's deadline keeps it from holding up the collection."""

    def close(self) -> None:
        self._handle.close()


def open_pipe(path: str) -> BinaryIO:
    return open(path, "r+b", buffering=0)  # the connection owns it and closes it


class PipeConnection(http.client.HTTPConnection):
    def __init__(
        self, path: str, timeout: float, opener: Callable[[str], BinaryIO] = open_pipe
    ) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path
        self.opener = opener

    def connect(self) -> None:
        self.sock = PipeSocket(self.opener(self.path))


SCHEMES = ("unix", "npipe", "tcp", "http", "https")


def check_address(address: str) -> None:
    """Raise EngineAddressError unless this client can use `address` (a DOCKER_HOST value)."""
    parts = urlsplit(address)
    if parts.scheme == "ssh":
        raise EngineAddressError(
            f"{address}: the exporter does not reach engines over ssh; run it on that host "
            "(or expose the engine on tcp:// with TLS)"
        )
    if parts.scheme not in SCHEMES or (
        parts.scheme in ("tcp", "http", "https") and not parts.hostname
    ):
        raise EngineAddressError(
            f"{address}: expected unix:///path, tcp://host:port or npipe:////./pipe/name"
        )


def connection_factory(
    address: str, timeout: float, environ: Mapping[str, str] | None = None
) -> Callable[[], http.client.HTTPConnection]:
    """What opens one connection to the engine at `address` (a DOCKER_HOST value)."""
    check_address(address)
    env = os.environ if environ is None else environ
    parts = urlsplit(address)
    if parts.scheme == "unix":
        path = parts.path or "/var/run/docker.sock"
        return lambda: UnixConnection(path, timeout)
    if parts.scheme == "npipe":
        # npipe:////./pipe/docker_engine names the pipe \\.\pipe\docker_engine
        pipe = "\\\\" + parts.path.lstrip("/").replace("/", "\\")
        return lambda: PipeConnection(pipe, timeout)
    context = tls_context(env) if parts.scheme == "tcp" else None
    if parts.scheme == "https" and context is None:
        context = ssl.create_default_context()
    host, port = parts.hostname or "", parts.port
    if context is not None:
        tls = context
        return lambda: http.client.HTTPSConnection(host, port or 2376, timeout=timeout, context=tls)
    return lambda: http.client.HTTPConnection(host, port or 2375, timeout=timeout)


class Engine:
    """Read-only calls to one Docker engine, safe to use from several threads at once."""

    def __init__(
        self, address: str, timeout: float, environ: Mapping[str, str] | None = None
    ) -> None:
        self.address = address
        self._open = connection_factory(address, timeout, environ)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[http.client.HTTPConnection] = []
        self.api_version = ""
        self.os_type = "linux"  # the engine's: "windows" counts CPU time in 100 ns units

    def negotiate(self) -> str:
        """Ask the engine for its API version and speak that from now on, as the docker CLI
        does, so an old engine gets calls it understands."""
        version = self._get("/version")
        self.api_version = str(version.get("ApiVersion", ""))
        self.os_type = str(version.get("Os") or "linux").lower()
        return self.api_version

    def containers(self) -> list[dict[str, Any]]:
        """Every container, running or not (one sparse list call)."""
        return list(self.get("/containers/json", all="1"))

    def inspect(self, container: str) -> dict[str, Any]:
        return dict(self.get(f"/containers/{container}/json"))

    def stats(self, container: str) -> dict[str, Any]:
        """One stats sample: `one-shot` where the engine has it, else its two-sample call."""
        params = {"stream": "false"}
        if api_version_at_least(self.api_version, ONE_SHOT_API):
            params["one-shot"] = "true"
        return dict(self.get(f"/containers/{container}/stats", **params))

    def get(self, path: str, **params: str) -> Any:
        prefix = f"/v{self.api_version}" if self.api_version else ""
        return self._get(prefix + path, **params)

    def _get(self, path: str, **params: str) -> Any:
        target = f"{path}?{urlencode(params)}" if params else path
        conn = self._connection()
        try:
            conn.request("GET", target, headers={"Accept": "application/json"})
            response = conn.getresponse()
            body = response.read()
        except BaseException:
            self._discard(conn)  # in an unknown state: the next call opens a new one
            raise
        if response.will_close:
            self._discard(conn)
        if response.status != 200:
            raise EngineError(response.status, path, _message(body))
        return json.loads(body)

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _discard(self, conn: http.client.HTTPConnection) -> None:
        self._local.conn = None
        conn.close()
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", "")) or body.decode(errors="replace")
    except (ValueError, AttributeError):
        return body.decode(errors="replace").strip()[:200]
