"""Reading server-sent events (the log streams) the way a client does."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp


async def read_events(
    response: aiohttp.ClientResponse, count: int, within: float = 10.0
) -> list[tuple[str, dict[str, Any]]]:
    """(event id, decoded data) of up to `count` events; fewer if the stream ends first."""
    events: list[tuple[str, dict[str, Any]]] = []
    event_id = ""
    async with asyncio.timeout(within):
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                events.append((event_id, json.loads(line[6:])))
                if len(events) == count:
                    return events
    return events
