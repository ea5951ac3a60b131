"""Screenshots of the real Home Assistant UI for the guides (docs/img/ha-*.png).

    .venv/bin/python -m scripts.screenshots [--out docs/img]

Boots a real ``hass`` with the frontend (tests/real_hass/harness.py: fresh config dir, the
integration copied in, onboarded, a long-lived token), adds a standalone Fractal Node through
the config-flow API, with the community blueprints in its blueprints folder, and photographs
pages in headless Chromium. Chromium is logged in the way
the frontend logs itself in: a small page served by Home Assistant itself (``/local/``, the
config dir's ``www``, so the same origin) puts the token into ``localStorage.hassTokens`` and
then opens the page to photograph. Slow (a minute or two): not run in CI;
tests/scripts/test_screenshots.py checks its building blocks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.real_hass.harness import HassClient, RealHass, running_hass
from tests.support.headless_browser import screenshot

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
BLUEPRINTS = REPOSITORY_ROOT / "blueprints" / "automation" / "fractal_node"
WINDOW = (1280, 860)
# The frontend refreshes a token that is about to expire; a long-lived token never needs it.
TOKEN_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000
NODE = {
    "name": "Elm Road 12",
    "node_id": "elm-road-12",
    "tags": "street=Elm Road\nfeeder=F12",
    "link": "standalone",
}


@dataclass(frozen=True)
class Shot:
    """One screenshot: the file name in docs/img and the frontend path to open."""

    file: str
    path: str


def login_page(base_url: str, token: str, target: str) -> str:
    """A page that logs the frontend in with `token` and then opens `target` (a path)."""
    tokens = {
        "hassUrl": base_url,
        "clientId": f"{base_url}/",
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME_MS // 1000,
        "expires": "EXPIRES",
        "refresh_token": "",
    }
    stored = json.dumps(tokens).replace('"EXPIRES"', f"Date.now() + {TOKEN_LIFETIME_MS}")
    return (
        "<!doctype html><meta charset='utf-8'><title>login</title><script>\n"
        f"localStorage.setItem('hassTokens', JSON.stringify({stored}));\n"
        f"location.replace({json.dumps(target)});\n"
        "</script>\n"
    )


def shots(device_id: str) -> list[Shot]:
    return [
        Shot("ha-device.png", f"/config/devices/device/{device_id}"),
        Shot("ha-integration.png", "/config/integrations/integration/fractal_node"),
        Shot("ha-blueprints.png", "/config/blueprint/dashboard"),
    ]


def add_node(client: HassClient) -> str:
    """A standalone node through the config-flow API, as the UI adds it; its device's id."""
    form = client.start_config_flow("fractal_node").body
    created = client.submit_config_flow(form["flow_id"], NODE).body
    if created.get("type") != "create_entry":
        raise RuntimeError(f"the node was not created: {created}")
    entry_id = created["result"]["entry_id"]
    devices = client.ws_command({"type": "config/device_registry/list"})
    for device in devices:
        if entry_id in device["config_entries"]:
            return str(device["id"])
    raise RuntimeError(f"no device for entry {entry_id}")


async def photograph(hass: RealHass, out_dir: Path, device_id: str) -> list[Path]:
    token = hass.client.token
    if token is None:
        raise RuntimeError("the harness gave no token")
    www = hass.config_dir / "www"
    taken = []
    for shot in shots(device_id):
        page = www / f"login-{shot.file}.html"
        page.write_text(login_page(hass.base_url, token, shot.path))
        url = f"{hass.base_url}/local/{page.name}"
        taken.append(await screenshot(url, out_dir / shot.file, window=WINDOW))
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPOSITORY_ROOT / "docs" / "img")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fractal-screenshots-") as tmp:
        config_dir = Path(tmp) / "config"
        (config_dir / "www").mkdir(parents=True)  # /local/ is served only if it exists at start
        # The community blueprints, as a householder who imported them has them.
        shutil.copytree(BLUEPRINTS, config_dir / "blueprints" / "automation" / "fractal_node")
        with running_hass(config_dir) as hass:
            device_id = add_node(hass.client)
            for path in asyncio.run(photograph(hass, args.out, device_id)):
                print(path)


if __name__ == "__main__":
    main()
