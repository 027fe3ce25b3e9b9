"""`fleetpulse` commands as real subprocesses, with every output line kept for the checks."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Service:
    """One `python -m fleetpulse ...` process; stdout and stderr lines are collected as read."""

    proc: asyncio.subprocess.Process
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return "".join(self.out) + "".join(self.err)

    async def wait_line(self, predicate: Callable[[str], bool], within: float = 60.0) -> str:
        deadline = time.monotonic() + within
        while True:
            for line in [*self.out, *self.err]:
                if predicate(line):
                    return line
            if self.proc.returncode is not None:
                raise AssertionError(f"process exited {self.proc.returncode}:\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for a line:\n{self.text()[-4000:]}")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.finish()

    async def stop(self) -> int:
        """SIGTERM and wait for a clean exit; the exit code."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.finish()

    async def finish(self) -> int:
        try:
            async with asyncio.timeout(60):
                code = await self.proc.wait()
                await asyncio.gather(*self.readers)
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        return code


async def _read(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace"))


async def start_service(cwd: Path, *args: str, log_level: str = "debug") -> Service:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleetpulse",
        "--log-level",
        log_level,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    service = Service(proc)
    service.readers = [
        asyncio.create_task(_read(proc.stdout, service.out)),
        asyncio.create_task(_read(proc.stderr, service.err)),
    ]
    return service
