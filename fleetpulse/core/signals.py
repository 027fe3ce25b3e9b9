"""Clean stops: an event set by SIGINT or SIGTERM, shared by every long-running command.

Kept apart from the services so the exporter can use it without importing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal


def stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, so Ctrl-C ends cleanly instead of with a traceback."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no loop signal handlers; there Ctrl-C still raises KeyboardInterrupt
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, event.set)
    return event
