"""exporter.dockerapi against a stand-in engine on a real unix socket (against the real
engine, beside the docker SDK, in test_containers.py).

The stand-in is a real HTTP server (http.server on AF_UNIX) that answers like the Engine API
and records the requests, so version negotiation, the one-shot switch, error answers and
keep-alive are checked on the wire. Windows named pipes cannot be opened here; the pipe
transport is checked over a real socket handle opened as a file, which is what a pipe handle
is to http.client, and only the opening of `\\\\.\\pipe\\...` is replaced.
"""

from __future__ import annotations

import concurrent.futures
import http.server
import io
import json
import os
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

import pytest

from exporter.dockerapi import (
    Engine,
    EngineAddressError,
    EngineError,
    PipeConnection,
    check_address,
    connection_factory,
)
from exporter.settings import DockerSettings
from exporter.sources.containers import ContainerSource, EngineUnavailable
from tests.support.tls import self_signed

if not hasattr(socket, "AF_UNIX"):
    pytest.skip("the stand-in engine listens on a unix socket", allow_module_level=True)


@dataclass
class FakeEngine:
    api_version: str = "1.41"
    os: str = "linux"
    stats_calls: int = 0
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((path, query))
        if path == "/version":
            return 200, {"ApiVersion": self.api_version, "Version": "20.10.24", "Os": self.os}
        prefix = f"/v{self.api_version}"
        if not path.startswith(prefix + "/"):
            return 400, {"message": f"client version mismatch: {path}"}
        rest = path[len(prefix) :]
        if rest == "/containers/json":
            return 200, [{"Id": "abc123", "Names": ["/web"], "State": "running"}]
        if rest == "/containers/abc123/json":
            return 200, {"State": {"Status": "running"}, "RestartCount": 2}
        if rest == "/containers/abc123/stats":
            if self.os == "windows":
                return 200, self.windows_stats()
            return 200, {"read": "2026-11-27T00:00:00.5Z", "pids_stats": {"current": 3}}
        return 404, {"message": "No such container: gone"}

    def windows_stats(self) -> dict[str, Any]:
        """What a Windows engine answers: CPU time in 100 ns units (half a core here, one
        second apart), the private working set, storage_stats instead of blkio_stats."""
        with self.lock:
            self.stats_calls += 1
            n = self.stats_calls
        return {
            "read": f"2026-11-27T00:00:{n:02d}.0000000Z",
            "num_procs": 4,
            "cpu_stats": {"cpu_usage": {"total_usage": n * 5_000_000}},
            "memory_stats": {"privateworkingset": 50_000_000, "commitbytes": 80_000_000},
            "storage_stats": {"read_size_bytes": 4096 * n, "write_size_bytes": 1024 * n},
        }


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as dockerd
    server: _UnixServer

    def setup(self) -> None:
        super().setup()
        with self.server.fake.lock:
            self.server.fake.connections += 1

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        status, body = self.server.fake.answer(parts.path, parse_qs(parts.query))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake records what it was asked."""


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    fake: FakeEngine


class _TcpServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    fake: FakeEngine


@contextmanager
def serving(server: _UnixServer | _TcpServer, fake: FakeEngine) -> Iterator[FakeEngine]:
    server.fake = fake
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def socket_path() -> Iterator[str]:
    # AF_UNIX paths are limited to ~107 bytes; pytest's tmp_path can be longer
    short = Path(f"/tmp/fp-dockerapi-{os.getpid()}.sock")
    short.unlink(missing_ok=True)
    yield str(short)
    short.unlink(missing_ok=True)


@pytest.fixture
def fake(socket_path: str) -> Iterator[FakeEngine]:
    with serving(_UnixServer(socket_path, _Handler), FakeEngine()) as engine:
        yield engine


def test_negotiates_the_api_version_and_asks_for_one_shot_stats(
    fake: FakeEngine, socket_path: str
) -> None:
    engine = Engine(f"unix://{socket_path}", timeout=5)
    try:
        assert engine.negotiate() == "1.41"
        assert [c["Id"] for c in engine.containers()] == ["abc123"]
        assert engine.inspect("abc123")["RestartCount"] == 2
        assert engine.stats("abc123")["pids_stats"] == {"current": 3}
    finally:
        engine.close()
    paths = [path for path, _ in fake.requests]
    assert paths == [
        "/version",
        "/v1.41/containers/json",
        "/v1.41/containers/abc123/json",
        "/v1.41/containers/abc123/stats",
    ]
    assert fake.requests[1][1] == {"all": ["1"]}
    assert fake.requests[3][1] == {"stream": ["false"], "one-shot": ["true"]}
    assert fake.connections == 1, "one keep-alive connection for the four calls"


def test_an_engine_older_than_api_1_41_gets_the_two_sample_stats_call(socket_path: str) -> None:
    with serving(_UnixServer(socket_path, _Handler), FakeEngine(api_version="1.40")) as fake:
        engine = Engine(f"unix://{socket_path}", timeout=5)
        try:
            engine.negotiate()
            engine.stats("abc123")
        finally:
            engine.close()
    assert fake.requests[-1] == ("/v1.40/containers/abc123/stats", {"stream": ["false"]})


def test_an_error_answer_carries_the_status_and_the_engines_message(
    fake: FakeEngine, socket_path: str
) -> None:
    engine = Engine(f"unix://{socket_path}", timeout=5)
    try:
        engine.negotiate()
        with pytest.raises(EngineError, match=r"404.*No such container: gone") as caught:
            engine.inspect("gone")
        assert caught.value.status == 404
        assert engine.inspect("abc123")["RestartCount"] == 2, "the connection is still usable"
    finally:
        engine.close()
    assert fake.connections == 1


def test_threads_call_at_once_each_on_its_own_kept_alive_connection(
    fake: FakeEngine, socket_path: str
) -> None:
    engine = Engine(f"unix://{socket_path}", timeout=5)
    engine.negotiate()
    barrier = threading.Barrier(4)

    def calls(_: int) -> int:
        barrier.wait(5)  # all four threads exist before any call, so none is reused
        return sum(len(engine.containers()) for _ in range(5))

    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            assert list(pool.map(calls, range(4))) == [5, 5, 5, 5]
    finally:
        engine.close()
    assert fake.connections == 5, "the negotiating thread's and one per pool thread"


def test_no_engine_is_an_oserror_and_the_source_says_where_it_looked(tmp_path: Path) -> None:
    address = f"unix://{tmp_path}/none.sock"
    engine = Engine(address, timeout=2)
    with pytest.raises(FileNotFoundError):
        engine.negotiate()
    engine.close()
    source = ContainerSource(DockerSettings(host=address, request_timeout=2))
    try:
        with pytest.raises(EngineUnavailable, match=r"no Docker engine at .*nothing listens"):
            source.collect()
    finally:
        source.close()


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ("ssh://admin@host", "does not reach engines over ssh"),
        ("fd://", "expected unix:///path"),
        ("tcp://", "expected unix:///path"),
        ("docker.sock", "expected unix:///path"),
    ],
)
def test_addresses_it_cannot_use_say_what_would_work(address: str, error: str) -> None:
    with pytest.raises(EngineAddressError, match=error):
        check_address(address)


def test_tls_from_docker_cert_path_that_cannot_be_read_names_the_folder(tmp_path: Path) -> None:
    environ = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path / "certs")}
    with pytest.raises(EngineAddressError, match=r"cannot load the Docker TLS files from .*certs"):
        connection_factory("tcp://127.0.0.1:2376", 5, environ)


def test_tcp_with_docker_tls_verify_checks_the_engine_against_ca_pem(tmp_path: Path) -> None:
    tls = self_signed(tmp_path)
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.pem").write_bytes(tls.cert_file.read_bytes())  # self-signed: its own CA
    server = _TcpServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    with serving(server, FakeEngine()) as fake:
        trusted = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs)}
        engine = Engine(f"tcp://127.0.0.1:{port}", timeout=5, environ=trusted)
        try:
            assert engine.negotiate() == "1.41"
        finally:
            engine.close()
        assert fake.requests == [("/version", {})]

        (tmp_path / "other").mkdir()
        (certs / "ca.pem").write_bytes(self_signed(tmp_path / "other").cert_file.read_bytes())
        stranger = Engine(f"tcp://127.0.0.1:{port}", timeout=5, environ=trusted)
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                stranger.negotiate()
        finally:
            stranger.close()


def test_npipe_address_names_the_windows_pipe() -> None:
    conn = connection_factory("npipe:////./pipe/docker_engine", 5)()
    assert isinstance(conn, PipeConnection)
    assert conn.path == r"\\.\pipe\docker_engine"


def test_the_pipe_transport_speaks_http_over_a_file_handle(
    fake: FakeEngine, socket_path: str
) -> None:
    opened: list[BinaryIO] = []

    def open_socket_as_file(path: str) -> BinaryIO:
        # Windows-only `open(r"\\.\pipe\docker_engine", "r+b")` replaced by a handle that
        # behaves the same: one unbuffered file object read and written in turn
        assert path == r"\\.\pipe\docker_engine"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(socket_path)
        handle = io.FileIO(sock.detach(), "r+b")
        opened.append(handle)
        return handle

    engine = Engine("npipe:////./pipe/docker_engine", timeout=5)
    factory = engine._open
    engine._open = lambda: _with_opener(factory(), open_socket_as_file)
    try:
        assert engine.negotiate() == "1.41"
        assert engine.containers()[0]["Names"] == ["/web"]
        assert engine.stats("abc123")["pids_stats"]["current"] == 3
    finally:
        engine.close()
    assert fake.connections == 1 and len(opened) == 1, "the pipe is kept open between calls"
    assert opened[0].closed, "closing the engine closes the pipe"


def _with_opener(conn: Any, opener: Any) -> Any:
    assert isinstance(conn, PipeConnection)
    conn.opener = opener
    return conn


def test_a_windows_engine_counts_cpu_in_100ns_units_and_reports_its_own_memory_and_io(
    socket_path: str,
) -> None:
    """No Windows engine can run here: the stand-in answers as one does (docker's
    types.StatsJSON on Windows), and the real source reads it."""
    with serving(_UnixServer(socket_path, _Handler), FakeEngine(os="windows")):
        source = ContainerSource(DockerSettings(host=f"unix://{socket_path}", request_timeout=5))
        try:
            source.collect()
            families = {f.name: f.samples for f in source.collect()}
        finally:
            source.close()
    value = {name: samples[0].value for name, samples in families.items() if samples}
    assert value["container_cpu_seconds"] == pytest.approx(1.0)  # 2 x 5,000,000 x 100 ns
    assert value["container_cpu_usage_percent"] == pytest.approx(50.0)  # 100 = one core
    assert value["container_memory_usage_bytes"] == 50_000_000
    assert value["container_block_read_bytes"] == 8192
    assert value["container_block_written_bytes"] == 2048
