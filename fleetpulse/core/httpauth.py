"""Bearer or basic auth for our HTTP servers (exporter and API), compared in constant time;
on the API also the console's session cookie (`fleetpulse/core/sessions.py`), since a
browser's EventSource cannot send a header and tokens in URLs stay refused."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from fleetpulse.core.sessions import COOKIE, REQUEST_SESSION, Sessions

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Tokens in URLs end up in proxy logs and shell history, so they are refused outright.
QUERY_SECRET_KEYS = ("token", "access_token", "bearer_token", "api_key")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC = "_fleetpulse_public"
H = TypeVar("H")


def public(handler: H) -> H:
    """Mark a route's handler as reachable without credentials: the console's page and files
    (they hold no data; the API they call asks for the session) and the login itself."""
    setattr(handler, PUBLIC, True)
    return handler


def same_origin(request: web.Request) -> bool:
    """The browser's Origin names this server. Host and port only: behind a proxy that ends
    TLS the scheme this process sees is not the one the browser used."""
    origin = request.headers.get("Origin", "")
    return bool(origin) and urlsplit(origin).netloc.lower() == request.host.lower()


@dataclass(frozen=True, slots=True)
class AuthSettings:
    bearer_token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    open_paths: frozenset[str] = frozenset({"/healthz"})

    @property
    def enabled(self) -> bool:
        return bool(self.bearer_token or self.username)


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def check_authorization(header: str, auth: AuthSettings) -> bool:
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and auth.bearer_token:
        return _equal(credentials, auth.bearer_token)
    if scheme.lower() == "basic" and auth.username:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        # evaluate both comparisons so timing does not reveal which part was wrong
        return _equal(user, auth.username) & _equal(password, auth.password)
    return False


def auth_middleware(
    auth: AuthSettings,
    realm: str,
    logger: logging.Logger = log,
    sessions: Sessions | None = None,
) -> Middleware:
    """Refuse requests without the right credentials; `logger` names the service refusing
    them, so each service's log (the exporter's /logs) holds its own refusals. With
    `sessions`, a session cookie counts as well as the header, and a write that carries only
    the cookie must come from this origin (a page elsewhere cannot post with it)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if any(key in request.query for key in QUERY_SECRET_KEYS):
            logger.warning(
                "refused credentials in query string remote=%s path=%s",
                request.remote,
                request.path,
            )
            return web.json_response(
                {"error": "credentials in the URL are refused; send an Authorization header"},
                status=400,
            )
        if (
            not auth.enabled
            or request.path in auth.open_paths
            or getattr(request.match_info.handler, PUBLIC, False)
        ):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        session = request.cookies.get(COOKIE, "") if sessions is not None else ""
        if not header and session and sessions is not None and sessions.valid(session):
            if request.method in SAFE_METHODS or same_origin(request):
                request[REQUEST_SESSION] = session
                return await handler(request)
            logger.warning(
                "refused a cross-origin write remote=%s path=%s", request.remote, request.path
            )
            return web.json_response(
                {"error": "forbidden: a write with the session cookie must come from this origin"},
                status=403,
            )
        if not check_authorization(header, auth):
            if header:
                reason = "wrong credentials"
            else:
                reason = "expired session" if session else "missing credentials"
            logger.warning(
                "auth failed remote=%s path=%s reason=%s", request.remote, request.path, reason
            )
            challenge = "Basic" if auth.username and not auth.bearer_token else "Bearer"
            return web.json_response(
                {"error": f"unauthorized: {reason}"},
                status=401,
                headers={"WWW-Authenticate": f'{challenge} realm="{realm}"'},
            )
        return await handler(request)

    return middleware
