"""The console's routes on a bare aiohttp app: the page, its files, the headers that keep it
to its own origin, and what a source install without uPlot shows."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import console.routes
from console.routes import console_routes, vendor_missing
from tests.support.servers import serve_app


def console_app() -> web.Application:
    app = web.Application()
    console_routes(refresh=2.0)(app)
    return app


async def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, dict(response.headers), await response.read()


async def test_the_page_is_served_at_the_root_with_headers_that_keep_it_to_its_origin() -> None:
    async with serve_app(console_app()) as base:
        status, headers, body = await fetch(f"{base}/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert b'<script type="module" src="/static/app.js">' in body
    assert b'id="fleetpulse-settings">{"refresh": 2.0, "metrics": {"cpu": "host_cpu' in body


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/app.js", "text/javascript"),
        ("/static/console.css", "text/css"),
        ("/static/vendor/uPlot.esm.js", "text/javascript"),
        ("/static/vendor/uPlot.min.css", "text/css"),
    ],
)
async def test_modules_styles_and_the_charting_library_are_served_with_their_types(
    path: str, content_type: str
) -> None:
    if path.startswith("/static/vendor/") and vendor_missing(console.routes.VENDOR):
        pytest.skip("uPlot is not installed here: python3 tools/packaging/console_vendor.py")
    async with serve_app(console_app()) as base:
        status, headers, body = await fetch(f"{base}{path}")
    assert status == 200
    assert headers["Content-Type"].startswith(content_type)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert body


@pytest.mark.parametrize(
    "path",
    ["/static/../routes.py", "/static/%2e%2e/routes.py", "/static/vendor/.lock.sha256",
     "/static/nothing.js", "/static/"],
)  # fmt: skip
async def test_nothing_but_the_consoles_own_files_is_served(path: str) -> None:
    async with serve_app(console_app()) as base:
        status, _, _ = await fetch(f"{base}{path}")
    assert status == 404


async def test_without_the_charting_library_the_page_says_what_is_missing_and_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a source install where npm never ran: an empty vendor folder
    monkeypatch.setattr(console.routes, "VENDOR", tmp_path)
    assert vendor_missing(tmp_path)
    async with serve_app(console_app()) as base:
        status, _, body = await fetch(f"{base}/")
    assert status == 200
    page = body.decode()
    assert 'class="missing" role="alert"' in page
    assert "uPlot" in page and "tools/packaging/console_vendor.py" in page and "npm" in page
