"""Synthetic exporters that also have agent log lines: their /metrics carry the
FleetPulse-Exporter header, so the collector pulls their /logs (JSON lines with seq and ts,
the run's id in FleetPulse-Log-Instance), as it does from a real exporter.

The test appends lines with `log()`; the next scrape carries them into the store.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from fleetpulse.core.headers import EXPORTER_HEADER, INSTANCE_HEADER
from tests.console.harness import SyntheticFleet, Usage
from tests.support.servers import serve_app


@dataclass
class LoggingFleet(SyntheticFleet):
    lines: dict[str, list[dict[str, object]]] = field(default_factory=dict)

    def log(self, host: str, level: str, message: str, logger: str = "exporter") -> None:
        lines = self.lines.setdefault(host, [])
        lines.append(
            {
                "seq": len(lines) + 1,
                # a millisecond apart at least: the API's stream resumes by time
                "ts": max(int(time.time() * 1000), int(str(lines[-1]["ts"])) + 1 if lines else 0),
                "level": level,
                "logger": logger,
                "message": message,
            }
        )

    def app(self) -> web.Application:
        async def metrics(request: web.Request) -> web.Response:
            usage = self.hosts.get(request.match_info["host"])
            if usage is None or not usage.up:
                raise web.HTTPServiceUnavailable()
            return web.Response(
                text=usage.exposition(), content_type="text/plain", headers={EXPORTER_HEADER: "1"}
            )

        async def logs(request: web.Request) -> web.Response:
            after = int(request.query.get("after", "0"))
            lines = self.lines.get(request.match_info["host"], [])
            body = "".join(
                json.dumps(line) + "\n" for line in lines if int(str(line["seq"])) > after
            )
            return web.Response(
                text=body,
                content_type="application/x-ndjson",
                headers={INSTANCE_HEADER: "synthetic"},
            )

        app = web.Application()
        app.router.add_get("/{host}/metrics", metrics)
        app.router.add_get("/{host}/logs", logs)
        return app


@asynccontextmanager
async def serve_logging_fleet(hosts: dict[str, Usage]) -> AsyncIterator[LoggingFleet]:
    fleet = LoggingFleet(hosts)
    async with serve_app(fleet.app()) as base:
        fleet.base = base
        yield fleet
