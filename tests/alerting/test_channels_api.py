"""GET /api/v1/channels and POST /api/v1/channels/{name}/test as the API serves them, with
real deliveries: to a recording webhook, and to a dead port whose error comes back scrubbed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from alerting.channel_api import channel_routes
from alerting.settings import AlertingSettings, ChannelSettings
from collector.api import make_api
from collector.api_context import ApiContext
from collector.storage.sqlite import SqliteStorage
from fleetpulse.core.httpauth import AuthSettings
from fleetpulse.core.listen import Listen
from fleetpulse.core.site import start_site
from fleetpulse.core.thresholds import Thresholds
from tests.alerting.recorders import HttpRecorder
from tests.support.servers import free_port

SECRETS = ("pa55word", "s3cr3t-t0ken", "abcd1234")


@asynccontextmanager
async def serve(
    store: SqliteStorage, settings: AlertingSettings, token: str = ""
) -> AsyncIterator[str]:
    ctx = ApiContext(store, Thresholds, 15.0, CollectorRegistry())
    app = make_api(ctx, AuthSettings(bearer_token=token), [channel_routes(settings)])
    runner, bound = await start_site(app, Listen("127.0.0.1", 0), shutdown_timeout=0.1)
    try:
        yield f"http://127.0.0.1:{bound.port}"
    finally:
        await runner.cleanup()


def settings(webhook: HttpRecorder) -> AlertingSettings:
    dead = f"json://user:pa55word@127.0.0.1:{free_port()}/hook/s3cr3t-t0ken?x=abcd1234"
    return AlertingSettings(
        channels=(
            ChannelSettings("ops", (f"json://{webhook.base.split('://', 1)[1]}/ops",)),
            ChannelSettings("dead", (dead,)),
        ),
        default_channels=("ops",),
        notify_timeout=5.0,
    )


async def call(
    method: str, url: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    timeout = aiohttp.ClientTimeout(total=20)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.request(method, url, headers=headers) as response,
    ):
        doc: dict[str, Any] = await response.json()
        return response.status, doc


async def test_channels_are_listed_by_name_without_their_urls(
    store: SqliteStorage, webhook: HttpRecorder
) -> None:
    async with serve(store, settings(webhook)) as base:
        status, body = await call("GET", f"{base}/api/v1/channels")
    assert status == 200
    assert body == {
        "channels": [{"name": "ops", "default": True}, {"name": "dead", "default": False}]
    }


async def test_a_test_notification_reaches_the_channel(
    store: SqliteStorage, webhook: HttpRecorder
) -> None:
    async with serve(store, settings(webhook)) as base:
        # what the console's own page sends
        headers = {"Origin": base}
        status, body = await call("POST", f"{base}/api/v1/channels/ops/test", headers)
    assert (status, body) == (200, {"ok": True})
    (received,) = webhook.on("/ops")
    assert "[TEST] FleetPulse notification test" in received.text


async def test_a_dead_channel_answers_its_error_without_its_secrets(
    store: SqliteStorage, webhook: HttpRecorder
) -> None:
    async with serve(store, settings(webhook)) as base:
        status, body = await call("POST", f"{base}/api/v1/channels/dead/test")
    assert status == 200
    assert body["ok"] is False
    assert "Connection refused" in body["error"], body
    for secret in SECRETS:
        assert secret not in body["error"], secret


async def test_an_unknown_channel_is_404(store: SqliteStorage, webhook: HttpRecorder) -> None:
    async with serve(store, settings(webhook)) as base:
        status, body = await call("POST", f"{base}/api/v1/channels/nope/test")
    assert status == 404
    assert body["error"] == "unknown channel 'nope'; alerting.channels defines: ops, dead"


async def test_a_cross_site_post_is_refused_and_sends_nothing(
    store: SqliteStorage, webhook: HttpRecorder
) -> None:
    async with serve(store, settings(webhook)) as base:
        for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            status, body = await call("POST", f"{base}/api/v1/channels/ops/test", headers)
            assert status == 403, headers
            assert body["error"].startswith("cross-site request refused")
    assert webhook.on("/ops") == []


async def test_with_a_token_the_test_needs_it(store: SqliteStorage, webhook: HttpRecorder) -> None:
    async with serve(store, settings(webhook), token="t0ken-of-the-api") as base:
        url = f"{base}/api/v1/channels/ops/test"
        status, _ = await call("POST", url)
        assert status == 401
        status, body = await call("POST", url, {"Authorization": "Bearer t0ken-of-the-api"})
        assert (status, body) == (200, {"ok": True})
