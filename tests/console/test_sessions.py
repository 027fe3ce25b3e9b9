"""The console's sessions on the API: the right token buys an HttpOnly, SameSite=Strict cookie
that is not the token, the cookie opens reads and the log stream, a write with it needs this
origin, logout ends it (and a log stream open on it), and the console's files stay reachable
without any of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from yarl import URL

from alerting.api import add_alert_routes
from collector.api import make_api
from collector.api_context import ApiContext
from collector.storage.sqlite import SqliteStorage
from console.routes import console_routes
from fleetpulse.core.httpauth import AuthSettings
from fleetpulse.core.samples import Sample, make_labels
from fleetpulse.core.thresholds import Thresholds
from fleetpulse.core.timeutil import now_ms
from tests.support.servers import serve_app

TOKEN = "console-token-123"
STREAM_END_WAIT = 10.0  # seconds; the stream looks again every half second


@pytest.fixture
async def base(store: SqliteStorage) -> AsyncIterator[str]:
    """The API with the console, as `fleetpulse up` serves them, asking for TOKEN."""
    ctx = ApiContext(store, Thresholds, 15.0, CollectorRegistry())
    api = make_api(ctx, AuthSettings(bearer_token=TOKEN), [add_alert_routes, console_routes()])
    async with serve_app(api) as url:
        yield url


def fresh_session() -> aiohttp.ClientSession:
    # loopback by IP: the cookie jar keeps cookies of IP hosts only when unsafe=True
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(session: aiohttp.ClientSession, base: str, token: str) -> aiohttp.ClientResponse:
    async with session.post(f"{base}/api/v1/login", json={"token": token}) as response:
        await response.read()
        return response


async def test_a_wrong_token_is_refused_and_sets_no_cookie(base: str) -> None:
    async with fresh_session() as session:
        response = await login(session, base, "wrong")
        assert response.status == 401
        assert "Set-Cookie" not in response.headers
        async with session.get(f"{base}/api/v1/hosts") as hosts:
            assert hosts.status == 401
        async with session.get(f"{base}/api/v1/login") as state:
            assert await state.json() == {"required": True, "signed_in": False}


async def test_the_session_cookie_opens_reads_until_logout(base: str) -> None:
    async with fresh_session() as session:
        response = await login(session, base, TOKEN)
        assert response.status == 200
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert TOKEN not in cookie
        async with session.get(f"{base}/api/v1/hosts") as hosts:
            assert hosts.status == 200
        async with session.get(f"{base}/api/v1/login") as state:
            assert await state.json() == {"required": True, "signed_in": True}
        stolen = {
            key: morsel.value
            for key, morsel in session.cookie_jar.filter_cookies(URL(base)).items()
        }
        async with session.post(f"{base}/api/v1/logout") as out:
            assert out.status == 200
        async with session.get(f"{base}/api/v1/hosts") as hosts:
            assert hosts.status == 401
    # the id the browser held is dead on the server too, not only forgotten by the browser
    async with (
        aiohttp.ClientSession() as other,
        other.get(f"{base}/api/v1/hosts", cookies=stolen) as hosts,
    ):
        assert hosts.status == 401
        assert (await hosts.json())["error"] == "unauthorized: expired session"


async def test_a_write_with_the_cookie_needs_this_origin(base: str) -> None:
    async with fresh_session() as session:
        await login(session, base, TOKEN)
        path = f"{base}/api/v1/nothing-here"
        for headers in ({}, {"Origin": "http://evil.example"}):
            async with session.post(path, headers=headers) as response:
                assert response.status == 403, headers
        # from this origin the write passes auth and meets the router (no such route)
        async with session.post(path, headers={"Origin": base}) as response:
            assert response.status in (404, 405)
    # the bearer header needs no Origin: the CLI and scripts are not browser pages
    async with (
        aiohttp.ClientSession() as plain,
        plain.post(
            f"{base}/api/v1/nothing-here", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response,
    ):
        assert response.status in (404, 405)


async def test_the_console_and_login_are_open_and_every_api_route_is_not(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/static/app.js", "/static/login.js", "/api/v1/login", "/healthz"):
            async with session.get(base + path) as response:
                assert response.status == 200, path
                assert TOKEN not in await response.text()
        for path in ("/api/v1/hosts", "/api/v1/alerts", "/api/v1/hosts/a/logs/stream", "/metrics"):
            async with session.get(base + path) as response:
                assert response.status == 401, path


async def test_logout_ends_a_log_stream_open_on_that_session(
    base: str, store: SqliteStorage
) -> None:
    await store.write([Sample("up", make_labels({"host": "h1", "job": "j"}), 1.0, now_ms())])
    async with fresh_session() as session:
        await login(session, base, TOKEN)
        async with session.get(f"{base}/api/v1/hosts/h1/logs/stream") as stream:
            assert stream.status == 200
            async with session.post(f"{base}/api/v1/logout") as out:
                assert out.status == 200
            async with asyncio.timeout(STREAM_END_WAIT):
                # the server closes the stream: reading reaches its end instead of waiting on
                await stream.read()
