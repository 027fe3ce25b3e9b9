"""What every HTTP API handler shares, whichever service registers it: the store it reads,
parameter errors (400, never 500) and the JSON error shape."""

from __future__ import annotations

from urllib.parse import urlsplit

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


def cross_site(request: web.Request) -> bool:
    """Whether a browser sent this write from another site's page, which the API refuses
    (403) whatever the credentials: a page elsewhere could otherwise make a logged-in
    console user's browser post to it. Browsers send `Origin` with every POST; a client
    that sends none (the CLI, curl) is not a browser page."""
    origin = request.headers.get("Origin")
    if origin is None:
        return request.headers.get("Sec-Fetch-Site", "same-origin") in ("cross-site", "same-site")
    return origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower()
