"""The console's routes: `/` (the one page; the views are chosen by the URL's fragment) and
`/static/…` (ES modules, CSS and the charting library, from this package's data).

The console is a client of the public API: nothing here reads the store. Every console
response carries headers that keep it to this origin (CSP), stop content sniffing and
refuse framing.
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from fleetpulse.core.httpauth import public
from fleetpulse.core.thresholds import THRESHOLD_METRICS

STATIC = Path(__file__).resolve().parent / "static"
VENDOR = STATIC / "vendor"
VENDOR_FILES = ("uPlot.esm.js", "uPlot.min.css")
SECURITY_HEADERS = {
    # uPlot sets element styles from script (CSSOM), which style-src does not govern; PNG
    # export draws through blob: URLs
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}
MISSING_MARK = "<!-- vendor -->"
CONFIG_MARK = "<!-- config -->"
PAGE = web.AppKey("console_page", str)  # the page's settings, as a JSON script block
MISSING_VENDOR = (
    '<p class="missing" role="alert">The charts are missing: this installation has no copy '
    "of the charting library (uPlot) in <code>{folder}</code>. In a checkout, run "
    "<code>make run</code>, or <code>python3 tools/packaging/console_vendor.py</code> (needs "
    "npm); a wheel built where npm exists carries it.</p>"
)


def vendor_missing(vendor: Path = VENDOR) -> bool:
    return not all((vendor / name).is_file() for name in VENDOR_FILES)


@public  # the page and its files hold no data: the API they call asks for the session
async def index(request: web.Request) -> web.Response:
    page = await asyncio.to_thread((STATIC / "index.html").read_text, encoding="utf-8")
    page = page.replace(CONFIG_MARK, request.app[PAGE])
    if await asyncio.to_thread(vendor_missing, VENDOR):
        page = page.replace(MISSING_MARK, MISSING_VENDOR.format(folder=html.escape(str(VENDOR))))
    return web.Response(
        text=page, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS
    )


@public
async def static_file(request: web.Request) -> web.StreamResponse:
    path = (STATIC / request.match_info["path"]).resolve()
    content_type = CONTENT_TYPES.get(path.suffix)
    # only the package's own files, by a type we name: no traversal, no directory listings
    if content_type is None or not path.is_relative_to(STATIC):
        raise web.HTTPNotFound()
    if not await asyncio.to_thread(path.is_file):
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={**SECURITY_HEADERS, "Content-Type": content_type})


def console_routes(refresh: float = 15.0) -> Callable[[web.Application], None]:
    """What registers the console at `/` and its files at `/static/…`; its pages refresh
    every `refresh` seconds (the scrape interval)."""
    settings = {"refresh": refresh, "metrics": THRESHOLD_METRICS}
    # JSON inside <script> cannot end the block early once "<" is escaped
    block = json.dumps(settings).replace("<", "\\u003c")
    script = f'<script type="application/json" id="fleetpulse-settings">{block}</script>'

    def add(app: web.Application) -> None:
        app[PAGE] = script
        app.router.add_get("/", index)
        app.router.add_get("/static/{path:.+}", static_file)

    return add
