"""The alert endpoints of the HTTP API: active alerts and alert history, read from storage."""

from __future__ import annotations

from aiohttp import web


def add_alert_routes(app: web.Application) -> None:
    """Register `/api/v1/alerts` and `/api/v1/alerts/history` (the alert engine issue, #5)."""
