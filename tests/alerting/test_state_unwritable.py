"""Permission denied while running: `fleetpulse up` as root without CAP_DAC_OVERRIDE (as a
systemd CapabilityBoundingSet or a hardened container runs it), whose data dir stops taking
new files (mode 0555) after it started. The SQLite store writes on through the files it holds
open; the alert state file, written anew at each change, is refused. The engine says so once,
goes on evaluating and notifying, and saves again once the folder is writable.

A real subprocess, a real dead target, delivery through Apprise to a local HTTP recorder."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.alerting.recorders import HttpRecorder
from tests.alerting.test_selfwatch import HOST_DOWN
from tests.support.cli import without_dac_override
from tests.support.poll import eventually
from tests.support.servers import free_port

# a `for` long enough that HostDown fires after the folder stops taking files
RULES = HOST_DOWN.replace("for: 1s", "for: 3s")


class Up:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.err: list[str] = []

    @property
    def log(self) -> str:
        return "".join(self.err)

    async def read_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.err.append(line.decode())


@asynccontextmanager
async def up_without_dac_override(tmp_path: Path, webhook: HttpRecorder) -> AsyncIterator[Up]:
    no_dac_override = without_dac_override()
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hosts.yaml").write_text(RULES)
    port = webhook.base.rsplit(":", 1)[1]
    config = tmp_path / "fleetpulse.yaml"
    config.write_text(
        json.dumps(
            {
                "scrape": {
                    "interval": "250ms",
                    "targets": [{"url": f"http://127.0.0.1:{free_port()}/", "host": "db-1"}],
                },
                "exporter": {"listen": "127.0.0.1:0", "interval": "1s"},
                "api": {"listen": "127.0.0.1:0"},
                "alerting": {
                    "rules": [str(rules)],
                    "interval": "250ms",
                    "channels": {"ops": [f"json://127.0.0.1:{port}/ops"]},
                    "default_channels": ["ops"],
                },
            }
        )
    )
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    proc = await asyncio.create_subprocess_exec(
        *no_dac_override,
        sys.executable,
        "-m",
        "fleetpulse",
        "up",
        "-c",
        str(config),
        "--data-dir",
        str(data),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
    )
    up = Up(proc)
    reader = asyncio.create_task(up.read_stderr())
    try:
        yield up
    finally:
        data.chmod(0o755)
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
        await reader


async def test_a_data_dir_that_refuses_files_while_running_still_notifies_and_saves_later(
    tmp_path: Path, webhook: HttpRecorder
) -> None:
    data = tmp_path / "data"
    state = data / "alert-state.json"
    async with up_without_dac_override(tmp_path, webhook) as up:
        await eventually(state.exists, what="the first state save", within=30)
        data.chmod(0o555)  # root without CAP_DAC_OVERRIDE obeys it

        await eventually(
            lambda: "alert state not saved" in up.log, what="the refusal logged", within=30
        )
        await eventually(
            lambda: [r for r in webhook.on("/ops") if "HostDown" in r.text],
            what="HostDown delivered while the state cannot be saved",
            within=30,
        )
        assert "error=Permission denied" in up.log
        assert "HostDown" not in state.read_text()  # the file on disk is the one from before

        data.chmod(0o755)
        await eventually(lambda: "alert state saved again" in up.log, what="saved again", within=30)
        assert "HostDown" in state.read_text()
        assert up.proc.returncode is None, up.log  # it never stopped
    assert up.log.count("alert state not saved") == 1, up.log  # once per outage
    assert "Traceback" not in up.log
