"""`fleetpulse logs HOST`: an exporter's own log lines through the API, optionally followed."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, TextIO

import aiohttp

from fleetpulse.app.apiclient import ApiClient, ApiError, ApiTarget, ApiUnreachable

RECONNECT_SECONDS = 1.0
LEVEL_COLOURS = {"warning": "\x1b[33m", "error": "\x1b[31m", "critical": "\x1b[31;1m"}


def format_line(line: dict[str, Any], colour: bool) -> str:
    level = str(line.get("level", "")).upper()
    text = f"{line.get('time', '')} {level:<8} {line.get('logger', '')}: {line.get('message', '')}"
    code = LEVEL_COLOURS.get(str(line.get("level")), "") if colour else ""
    return f"{code}{text}\x1b[0m" if code else text


class Reconnects:
    """One line on stderr when the stream drops and one when it is back, not one per retry."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.lost = False

    def dropped(self) -> None:
        if not self.lost:
            self.lost = True
            self.err.write("connection lost, retrying…\n")
            self.err.flush()

    def opened(self) -> None:
        if self.lost:
            self.lost = False
            self.err.write("reconnected\n")
            self.err.flush()


async def follow(
    client: ApiClient,
    host: str,
    params: dict[str, str],
    out: TextIO,
    err: TextIO,
    last_id: str = "",
) -> None:
    """Print lines as they arrive; after a dropped connection resume from the last id."""
    colour = out.isatty()
    reconnects = Reconnects(err)
    while True:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        try:
            event_id = ""
            async for raw in client.stream_lines(
                f"/api/v1/hosts/{host}/logs/stream", params, headers, reconnects.opened
            ):
                if raw.startswith("id: "):
                    event_id = raw[4:]
                elif raw.startswith("data: "):
                    out.write(format_line(json.loads(raw[6:]), colour) + "\n")
                    out.flush()
                    last_id = event_id or last_id
        # the API is restarting, stopped mid-stream (a cut body, a closed connection) or the
        # network blinked: resume where we were
        except (ApiUnreachable, aiohttp.ClientError, TimeoutError, OSError):
            pass
        reconnects.dropped()
        await asyncio.sleep(RECONNECT_SECONDS)


async def run_logs(
    target: ApiTarget,
    host: str,
    since: str,
    level: str | None,
    grep: str | None,
    follow_lines: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    params = {"since": since}
    if level:
        params["level"] = level
    if grep:
        params["q"] = grep
    async with ApiClient(target) as client:
        hosts = {h["host"] for h in (await client.get_json("/api/v1/hosts")).get("hosts", [])}
        if host not in hosts:
            known = ", ".join(sorted(hosts)) or "none yet"
            raise ApiError(f"unknown host {host!r}; known hosts: {known}")
        doc = await client.get_json(f"/api/v1/hosts/{host}/logs", params)
        colour = out.isatty()
        last_id = ""
        for line in doc.get("lines", []):
            out.write(format_line(line, colour) + "\n")
            last_id = str(line["ts"])
        out.flush()
        if follow_lines:
            await follow(client, host, params, out, err, last_id)
    return 0
