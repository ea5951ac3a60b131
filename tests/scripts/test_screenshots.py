"""The building blocks of scripts/screenshots.py (the script itself boots a real Home Assistant
and is slow, so it is run by hand): its login page, in headless Chromium against a real HTTP
server on 127.0.0.1, leaves the token where the frontend reads it and opens the page to take."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from scripts.screenshots import login_page, shots
from tests.support.headless_browser import dump_dom

TARGET = """<!doctype html><meta charset="utf-8"><body><pre id="stored"></pre><script>
document.getElementById("stored").textContent = localStorage.getItem("hassTokens");
</script>"""


@pytest.fixture
async def site(socket_enabled: None) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A real HTTP server: `pages` maps a path to the HTML it serves."""
    pages: dict[str, str] = {}

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=pages[request.path], content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    server = web.TCPSite(runner, "127.0.0.1", 0)
    await server.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", pages
    await runner.cleanup()


async def test_the_login_page_stores_the_token_and_opens_the_page(
    site: tuple[str, dict[str, str]],
) -> None:
    base_url, pages = site
    pages["/local/login.html"] = login_page(base_url, "the.long.lived.token", "/config/x?y=1")
    pages["/config/x"] = TARGET

    dom = await dump_dom(f"{base_url}/local/login.html")

    stored = json.loads(dom.split('<pre id="stored">')[1].split("</pre>")[0])
    assert stored["access_token"] == "the.long.lived.token"
    assert stored["hassUrl"] == base_url  # the frontend uses tokens of its own origin only
    assert stored["clientId"] == f"{base_url}/"
    assert stored["token_type"] == "Bearer"
    assert stored["expires"] > time.time() * 1000 + 300 * 24 * 3600 * 1000  # never refreshed


def test_the_shots_are_the_guides_images() -> None:
    taken = shots("abc123")

    assert [shot.file for shot in taken] == [
        "ha-device.png",
        "ha-integration.png",
        "ha-blueprints.png",
        "ha-calendar.png",
    ]
    assert taken[0].path == "/config/devices/device/abc123"
