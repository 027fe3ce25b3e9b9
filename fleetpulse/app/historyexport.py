"""`fleetpulse history`: a metric's history from the API as a table, CSV or JSON."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from fleetpulse.app.apiclient import ApiClient, ApiTarget
from fleetpulse.app.statusview import Cell, render_table
from fleetpulse.core.timeutil import format_time


class Progress:
    """Bytes received, shown on a terminal once a download takes longer than a moment."""

    def __init__(self, out: TextIO, delay: float = 0.5) -> None:
        self.out = out
        self.enabled = out.isatty()
        self.started = time.monotonic()
        self.delay = delay
        self.shown = False

    def __call__(self, received: int) -> None:
        if self.enabled and time.monotonic() - self.started > self.delay:
            self.out.write(f"\rdownloading… {received / 1024:,.0f} KiB")
            self.out.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            self.out.write("\n")
            self.out.flush()


def render_history_table(doc: dict[str, Any]) -> str:
    series = doc.get("series", [])
    columns = sorted({k for s in series for k in s["labels"]})
    rows = [
        [
            Cell(format_time(int(ts), millis=True)),
            *(Cell(s["labels"].get(c, "")) for c in columns),
            Cell(f"{value:g}"),
        ]
        for s in series
        for ts, value in s["points"]
    ]
    rows.sort(key=lambda row: row[0].text)
    footer = f"{len(rows)} points in {len(series)} series from the {doc.get('tier', '?')} tier"
    return render_table(["TIME", *(c.upper() for c in columns), "VALUE"], rows, False) + (
        f"\n{footer}"
    )


async def run_history(
    target: ApiTarget,
    host: str,
    metric: str,
    since: str,
    until: str,
    step: str | None,
    output: str,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    params = {
        "metric": metric,
        "start": since,
        "end": until,
    }
    if step:
        params["step"] = step
    if output == "csv":
        params["format"] = "csv"
    progress = Progress(err)
    async with ApiClient(target) as client:
        body = await client.get_text(
            f"/api/v1/hosts/{host}/metrics/history", params, on_progress=progress
        )
    progress.done()
    if output == "csv":
        out.write(body)
    elif output == "json":
        out.write(json.dumps(json.loads(body), indent=2) + "\n")
    else:
        out.write(render_history_table(json.loads(body)) + "\n")
    return 0
