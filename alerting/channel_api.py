"""The channel endpoints of the HTTP API: the configured channel names (never their URLs,
which carry tokens) and a test notification through one of them.

They need the config's `alerting` section, not the store, so the app hands them in with the
settings of the process serving the API (`channel_routes(config.alerting)`); the test goes
through the same path as `fleetpulse notify test`.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from alerting.notify import DeliveryFailed, UnknownChannel, send_test
from alerting.settings import AlertingSettings
from fleetpulse.core.httpapi import cross_site, error


def channel_routes(settings: AlertingSettings) -> Callable[[web.Application], None]:
    """What registers `GET /api/v1/channels` and `POST /api/v1/channels/{name}/test`."""

    async def channels(request: web.Request) -> web.Response:
        defaults = set(settings.default_channels)
        return web.json_response(
            {
                "channels": [
                    {"name": name, "default": name in defaults} for name in settings.channel_names()
                ]
            }
        )

    async def test(request: web.Request) -> web.Response:
        if cross_site(request):
            return error(403, "cross-site request refused: send it from the console's own page")
        name = request.match_info["name"]
        try:
            await send_test(settings, name)
        except UnknownChannel as exc:
            return error(404, str(exc))
        except DeliveryFailed as exc:
            # the channel's own error (secrets scrubbed by send_now): an answer, not a failure
            return web.json_response({"ok": False, "error": str(exc)})
        return web.json_response({"ok": True})

    def add(app: web.Application) -> None:
        app.router.add_get("/api/v1/channels", channels)
        app.router.add_post("/api/v1/channels/{name}/test", test)

    return add
