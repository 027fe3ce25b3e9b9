"""The console's login: `POST /api/v1/login` trades the API token for a session cookie,
`POST /api/v1/logout` ends it, `GET /api/v1/login` says whether one is needed and held.

The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it)
and Secure over TLS; its value is a random id, never the token (see sessions.py).
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from fleetpulse.core.httpauth import AuthSettings, check_authorization, public
from fleetpulse.core.sessions import COOKIE, Sessions

log = logging.getLogger(__name__)


def _session_ok(request: web.Request, sessions: Sessions) -> bool:
    session = request.cookies.get(COOKIE, "")
    return bool(session) and sessions.valid(session)


def add_login_routes(app: web.Application, auth: AuthSettings, sessions: Sessions) -> None:
    @public
    async def status(request: web.Request) -> web.Response:
        return web.json_response(
            {"required": auth.enabled, "signed_in": auth.enabled and _session_ok(request, sessions)}
        )

    @public
    async def login(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text())
            token = body["token"]
            if not isinstance(token, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'expected {"token": "..."}'}, status=400)
        if not auth.enabled:
            return web.json_response({"required": False, "signed_in": False})
        if not check_authorization(f"Bearer {token}", auth):
            log.warning("login refused remote=%s reason=wrong token", request.remote)
            return web.json_response({"error": "unauthorized: wrong token"}, status=401)
        response = web.json_response({"required": True, "signed_in": True})
        response.set_cookie(
            COOKIE,
            sessions.create(),
            max_age=int(sessions.lifetime),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )
        log.info("console login remote=%s", request.remote)
        return response

    @public
    async def logout(request: web.Request) -> web.Response:
        sessions.drop(request.cookies.get(COOKIE, ""))
        response = web.json_response({"required": auth.enabled, "signed_in": False})
        response.del_cookie(COOKIE, path="/", httponly=True, samesite="Strict")
        return response

    app.router.add_get("/api/v1/login", status)
    app.router.add_post("/api/v1/login", login)
    app.router.add_post("/api/v1/logout", logout)
