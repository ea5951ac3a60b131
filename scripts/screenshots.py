"""Screenshots of the real Home Assistant UI for the guides (docs/img/ha-*.png).

    .venv/bin/python -m scripts.screenshots [--out docs/img]

Boots a real ``hass`` with the frontend (tests/real_hass/harness.py: fresh config dir, the
integration copied in, onboarded, a long-lived token), adds a standalone Fractal Node through
the config-flow API (a grid meter and a battery emulated over Modbus TCP added as devices, and
a cheap window in its default plan), with the community blueprints in its blueprints folder,
and photographs pages in headless Chromium. Chromium is logged in the way
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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fractal.devices.regmap import load_shipped_map

from tests.fractal.devices.modbus_emulator import EmulatedDevice, EmulatorServer
from tests.real_hass.harness import HassClient, RealHass, running_hass, wait_until
from tests.support.headless_browser import screenshot

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
BLUEPRINTS = REPOSITORY_ROOT / "blueprints" / "automation" / "fractal_node"
WINDOW = (1280, 860)
READY_LIMIT_S = 120.0
# The frontend refreshes a token that is about to expire; a long-lived token never needs it.
TOKEN_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000


# A grid meter (unit 1) and a battery (unit 3) emulated over Modbus TCP, added as the
# installer adds them; the default plan's cheap window fills the calendar.
@dataclass(frozen=True)
class Emulated:
    """A device of the emulated home: its library model, its role and its unit ID."""

    model: str
    role: str
    unit: int


METER = Emulated("eastron_sdm230", "grid_meter", 1)
BATTERY = Emulated("generic_battery", "battery", 3)
BATTERY_LIMITS = {"max_charge_w": 3000, "max_discharge_w": 2500, "soc_min": 10, "soc_max": 95}
OPTIONS = {
    "tags": "street=Elm Road\nfeeder=F12",
    "default_plan": {"cheap_window": "00:30-04:30", "cheap_charge_w": 2500},
}
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
        Shot("ha-calendar.png", "/calendar"),
    ]


def add_node(client: HassClient, modbus_port: int) -> str:
    """A standalone node through the config-flow API, as the UI adds it, with a grid meter and
    a battery and the default plan's cheap window; the node device's id."""
    form = client.start_config_flow("fractal_node").body
    created = client.submit_config_flow(form["flow_id"], NODE).body
    if created.get("type") != "create_entry":
        raise RuntimeError(f"the node was not created: {created}")
    entry_id = created["result"]["entry_id"]
    add_device(client, entry_id, modbus_port, METER, {})
    add_device(client, entry_id, modbus_port, BATTERY, BATTERY_LIMITS)
    flow = client.post("/api/config/config_entries/options/flow", {"handler": entry_id})
    _created(client.post(f"/api/config/config_entries/options/flow/{flow['flow_id']}", OPTIONS))
    devices = client.ws_command({"type": "config/device_registry/list"})
    for device in devices:
        if entry_id in device["config_entries"] and device["model"] == "Energy node":
            return str(device["id"])
    raise RuntimeError(f"no node device for entry {entry_id}")


def add_device(
    client: HassClient, entry_id: str, port: int, device: Emulated, limits: dict[str, int]
) -> None:
    """Add device: connection, address, model, role and the safety envelope."""
    flows = "/api/config/config_entries/subentries/flow"
    step = client.post(flows, {"handler": [entry_id, "modbus_device"]})
    answers: list[dict[str, Any]] = [
        {"transport": "tcp"},
        {"host": "127.0.0.1", "port": port, "unit": device.unit},
        {"model": device.model},
        {"role": device.role},
    ]
    if limits:
        answers.append(limits)
    for answer in answers:
        step = client.post(f"{flows}/{step['flow_id']}", answer)
    _created(step)


def _created(step: dict[str, Any]) -> None:
    if step.get("type") != "create_entry":
        raise RuntimeError(f"a flow did not finish: {step}")


@contextmanager
def emulated_home() -> Iterator[int]:
    """The meter and the battery on a Modbus TCP server in a thread of its own; its port."""
    meter = EmulatedDevice(load_shipped_map(METER.model))
    meter.set("power", 450.0)
    battery = EmulatedDevice(load_shipped_map(BATTERY.model))
    battery.set("soc", 62.5)
    server = EmulatorServer({METER.unit: meter, BATTERY.unit: battery})
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start_tcp(0), loop).result(30)
    try:
        yield server.port
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def wait_for_readings(hass: RealHass) -> None:
    """After the options' reload: the node back with the meter's reading and its plan."""

    def ready() -> bool:
        states = hass.client.states()
        grid = states.get("sensor.elm_road_12_grid_power", {}).get("state", "")
        plan = states.get("calendar.elm_road_12_plan", {}).get("state", "unavailable")
        source = states.get("sensor.elm_road_12_plan_source", {}).get("state", "unknown")
        decided = source not in ("unknown", "unavailable")  # the executor's first tick
        return grid.replace(".", "", 1).lstrip("-").isdigit() and plan != "unavailable" and decided

    wait_until(hass, time.monotonic() + READY_LIMIT_S, "the node's readings", ready)


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
        with emulated_home() as modbus_port, running_hass(config_dir) as hass:
            device_id = add_node(hass.client, modbus_port)
            wait_for_readings(hass)
            for path in asyncio.run(photograph(hass, args.out, device_id)):
                print(path)


if __name__ == "__main__":
    main()
