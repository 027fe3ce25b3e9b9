"""What every HTTP API handler shares, whichever service registers it: the store it reads,
parameter errors (400, never 500) and the JSON error shape."""

from __future__ import annotations

from aiohttp import web

from fleetpulse.core.storage import Storage
from fleetpulse.core.timeutil import parse_time

# The store behind the API; handlers of any service read it from their app.
STORAGE = web.AppKey("storage", Storage)


class BadParameter(ValueError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def time_param(request: web.Request, name: str, default: str, now: int | None = None) -> int:
    """A time query parameter in ms (RFC 3339, relative, unix seconds or now); a 400 if bad."""
    try:
        return parse_time(request.query.get(name, default), now)
    except ValueError as exc:
        raise BadParameter(name, str(exc)) from None
