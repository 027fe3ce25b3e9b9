"""Helpers the services share: starting an aiohttp app on an address and reporting where."""

from __future__ import annotations

import os
import socket
import ssl

from aiohttp import web

from fleetpulse.config import Listen


async def start_site(
    app: web.Application,
    listen: Listen,
    ssl_context: ssl.SSLContext | None = None,
    *,
    shutdown_timeout: float = 5.0,
) -> tuple[web.AppRunner, Listen]:
    """Serve `app` on `listen` (port 0 picks a free port) and return the bound address.

    On cleanup, requests in flight get `shutdown_timeout` seconds to finish (streams, slow
    clients), so stopping never hangs for long.
    """
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    site = web.TCPSite(
        runner, listen.host, listen.port, ssl_context=ssl_context, reuse_address=True
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        # asyncio's strerror repeats the address and hides the reason; the errno says why
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise OSError(
            f"cannot listen on {listen}: {reason}; "
            "pick another address or stop the process using it"
        ) from None
    bound = listen.port
    server = site._server  # aiohttp exposes the bound sockets only here
    if server is not None:
        for sock in getattr(server, "sockets", ()):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                bound = sock.getsockname()[1]
                break
    return runner, Listen(listen.host, bound)
