"""Browser sessions of the HTTP API: random ids held in memory, handed out by the login route
for the right token and carried in an HttpOnly, SameSite=Strict cookie.

Random ids rather than an HMAC of the token: logging out really revokes one session (an HMAC
would be the same value for every login, valid until the token changes), and no value derived
from the token ever leaves the server. The price is that a restart logs everyone out, which
costs one login.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from aiohttp import web

COOKIE = "fleetpulse_session"
LIFETIME = 12 * 3600.0  # seconds a session lasts from its login
MAX_SESSIONS = 1000  # the oldest goes first beyond this, so logins cannot grow memory forever


class Sessions:
    def __init__(
        self, lifetime: float = LIFETIME, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self._expires: dict[str, float] = {}  # session id -> when it ends; oldest first

    def create(self) -> str:
        while len(self._expires) >= MAX_SESSIONS:
            del self._expires[next(iter(self._expires))]
        session = secrets.token_urlsafe(32)
        self._expires[session] = self.clock() + self.lifetime
        return session

    def valid(self, session: str) -> bool:
        expires = self._expires.get(session)
        if expires is None:
            return False
        if self.clock() >= expires:
            del self._expires[session]
            return False
        return True

    def drop(self, session: str) -> None:
        self._expires.pop(session, None)


# the sessions of an API app, and the one a request came in on (set by the auth middleware)
SESSIONS = web.AppKey("sessions", Sessions)
REQUEST_SESSION = web.RequestKey("session", str)


def signed_out(request: web.Request) -> bool:
    """Whether the session this request came in on has ended since (logout, expiry): a long
    answer such as a log stream stops then instead of running on for a signed-out browser."""
    session = request.get(REQUEST_SESSION)
    return session is not None and not request.app[SESSIONS].valid(session)
