"""Helpers the services share: starting an aiohttp app on an address and reporting where."""

from __future__ import annotations

import errno
import os
import socket
import ssl

from aiohttp import web

from fleetpulse.core.listen import Listen

# What to do next, by the reason a bind failed; anything else only names the reason.
BIND_ADVICE = {
    errno.EADDRINUSE: "pick another address or stop the process using it",
    errno.EADDRNOTAVAIL: "this machine has no such address; use one of its own, or 0.0.0.0",
    errno.EACCES: "ports below 1024 need root or CAP_NET_BIND_SERVICE; pick a higher one",
}


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
        advice = BIND_ADVICE.get(exc.errno or 0)
        raise OSError(
            f"cannot listen on {listen}: {reason}" + (f"; {advice}" if advice else "")
        ) from None
    bound = listen.port
    server = site._server  # aiohttp exposes the bound sockets only here
    if server is not None:
        for sock in getattr(server, "sockets", ()):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                bound = sock.getsockname()[1]
                break
    return runner, Listen(listen.host, bound)
