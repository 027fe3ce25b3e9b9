"""`fleetpulse exporter` as a real subprocess: a clean stop, and a busy port."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.poll import eventually


async def spawn_exporter(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleetpulse",
        "exporter",
        "--disable",
        "containers",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another process (here: the test) is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


async def test_exporter_on_a_busy_port_exits_1_naming_the_address(
    tmp_path: Path, busy_port: int
) -> None:
    proc = await spawn_exporter(tmp_path, "--listen", f"127.0.0.1:{busy_port}")
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = err.decode()
    assert proc.returncode == 1, stderr
    assert (
        f"error: cannot listen on 127.0.0.1:{busy_port}: address already in use; "
        "pick another address or stop the process using it"
    ) in stderr
    assert "Traceback" not in stderr and "Future exception" not in stderr
    assert out == b""


async def test_exporter_stops_cleanly_on_sigterm_while_collecting(tmp_path: Path) -> None:
    proc = await spawn_exporter(tmp_path, "--listen", "127.0.0.1:0", "--interval", "1s")
    assert proc.stderr is not None
    match: re.Match[str] | None = None
    try:
        async with asyncio.timeout(30):
            while line := (await proc.stderr.readline()).decode():
                if match := re.search(r"exporter listening on (http://\S+/metrics)", line):
                    break
        assert match is not None, "the exporter never said where it listens"
        async with aiohttp.ClientSession() as session:

            async def serves_the_host_source() -> bool:
                assert match is not None
                timeout = aiohttp.ClientTimeout(total=10)
                async with session.get(match.group(1), timeout=timeout) as response:
                    # the first answer may come before the host source's first collection
                    return response.status == 200 and "# TYPE host_" in await response.text()

            await eventually(serves_the_host_source, what="the host source served")
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
