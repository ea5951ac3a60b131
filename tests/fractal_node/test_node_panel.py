"""The home's dashboard in Home Assistant: the sidebar panel is registered for the node (and
removed with it), and the dashboard view computes the numbers from the recorder's history of
the node's power sensors, as docs/views.md says, checked here against the method written out
longhand for seeded states."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.fractal_node.const import DOMAIN
from custom_components.fractal_node.panel import WEBCOMPONENT, panel_url_path
from tests.fractal_node.helpers import NAME, NODE_ID, node_entry

# (minutes before the period ends, grid W, PV W, battery W); grid None: the meter went unavailable.
STEPS = (
    (120, 500.0, 0.0, 0.0),
    (60, -1000.0, 3000.0, 1500.0),
    (30, 200.0, 0.0, -300.0),
    (10, None, 0.0, -300.0),
)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: None) -> None:
    """The recorder must start before Home Assistant: replaces the package's autouse fixture
    (which asks for `hass` first) with one that asks for the recorder first."""


@pytest.fixture
async def power_sensors(hass: HomeAssistant) -> dict[str, str]:
    """The node's grid, PV and battery power sensors in the registry (entry not set up)."""
    assert await async_setup_component(hass, "http", {})
    assert await async_setup_component(hass, DOMAIN, {})
    entry = node_entry()
    entry.add_to_hass(hass)
    registry = er.async_get(hass)
    return {
        flow: registry.async_get_or_create(
            "sensor", DOMAIN, f"{NODE_ID}_{flow}_power", config_entry=entry
        ).entity_id
        for flow in ("grid", "pv", "battery")
    } | {"entry_id": entry.entry_id}


async def seed_history(hass: HomeAssistant, sensors: dict[str, str]) -> datetime:
    """Set the sensors' states back in time (the clock is frozen: the view's period ends at
    the last whole 5 minutes before now); returns that end."""
    now = dt_util.utcnow()
    end = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    for minutes, grid, pv, battery in STEPS:
        when = (end - timedelta(minutes=minutes)).timestamp()
        hass.states.async_set(
            sensors["grid"], "unavailable" if grid is None else str(grid), timestamp=when
        )
        hass.states.async_set(sensors["pv"], str(pv), timestamp=when)
        hass.states.async_set(sensors["battery"], str(battery), timestamp=when)
        await hass.async_block_till_done()
    await async_wait_recording_done(hass)
    return end


def longhand() -> dict[str, float]:
    """Wh per destination, each step's split times how long the step lasted."""
    totals = dict.fromkeys(
        ("pv_home", "battery_home", "grid_home", "pv_battery", "pv_export", "import"), 0.0
    )
    ends = [minutes for minutes, *_ in STEPS[1:]] + [0]
    for (minutes, grid, pv, battery), until in zip(STEPS, ends, strict=True):
        if grid is None:
            continue
        hours = (minutes - until) / 60
        demand = grid + pv - battery
        pv_home = min(pv, demand)
        pv_battery = min(pv - pv_home, max(battery, 0.0))
        battery_home = min(max(-battery, 0.0), demand - pv_home)
        for name, watts in (
            ("pv_home", pv_home),
            ("battery_home", battery_home),
            ("grid_home", demand - pv_home - battery_home),
            ("pv_battery", pv_battery),
            ("pv_export", pv - pv_home - pv_battery),
            ("import", max(grid, 0.0)),
        ):
            totals[name] += watts * hours
    return totals


async def test_the_view_computes_the_dashboard_from_the_recorder(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,  # the view and the seeding see the same now
    power_sensors: dict[str, str],
    hass_client: ClientSessionGenerator,
) -> None:
    end = await seed_history(hass, power_sensors)
    client = await hass_client()

    response = await client.get(f"/api/fractal_node/{power_sensors['entry_id']}/dashboard")

    assert response.status == 200, await response.text()
    body = await response.json()
    expected = longhand()
    assert body["node"] == NODE_ID
    assert body["demand_met_wh"] == pytest.approx(
        {
            "pv": expected["pv_home"],
            "battery": expected["battery_home"],
            "grid": expected["grid_home"],
        }
    )
    assert body["pv_use_wh"] == pytest.approx(
        {
            "self_consumed": expected["pv_home"],
            "battery": expected["pv_battery"],
            "exported": expected["pv_export"],
        }
    )
    assert body["energy_wh"]["import_wh"] == pytest.approx(expected["import"])
    # The meter went unavailable 10 minutes ago: "now" is the last 5 minutes it was known.
    assert body["now"]["ts"] == (end - timedelta(minutes=15)).isoformat()
    assert body["now"]["grid_w"] == 200.0
    assert body["now"]["discharge_w"] == 300.0
    assert body["now"]["demand_w"] == 500.0
    assert len(body["series"]["ts"]) == 288
    assert body["series"]["grid_w"][-1] is None


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/fractal_node/{entry}/dashboard?period=year", 400, "period must be one of day, week"),
        ("/api/fractal_node/nope/dashboard", 404, "no Fractal Node entry nope"),
    ],
)
async def test_bad_requests_say_why(
    power_sensors: dict[str, str],
    hass_client: ClientSessionGenerator,
    *,
    path: str,
    status: int,
    message: str,
) -> None:
    client = await hass_client()

    response = await client.get(path.format(entry=power_sensors["entry_id"]))

    assert response.status == status
    assert message in (await response.json())["message"]


async def test_the_view_needs_a_login(
    power_sensors: dict[str, str],
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    client = await hass_client_no_auth()

    response = await client.get(f"/api/fractal_node/{power_sensors['entry_id']}/dashboard")

    assert response.status == 401


async def test_the_panel_is_in_the_sidebar_while_the_node_is_loaded(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
) -> None:
    assert await async_setup_component(hass, "frontend", {})
    entry = node_entry()
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    websocket = await hass_ws_client(hass)

    await websocket.send_json({"id": 1, "type": "get_panels"})
    panels = (await websocket.receive_json())["result"]

    panel = panels[panel_url_path(entry)]
    assert panel["title"] == NAME
    assert panel["component_name"] == "custom"
    custom = panel["config"]["_panel_custom"]
    assert custom["name"] == WEBCOMPONENT
    assert panel["config"]["entry_id"] == entry.entry_id
    client = await hass_client()
    script = await client.get(custom["module_url"])
    assert script.status == 200
    assert f'customElements.define("{WEBCOMPONENT}"' in await script.text()
    plotly = await client.get("/fractal_node_static/plotly.min.js")
    assert plotly.status == 200

    assert await hass.config_entries.async_unload(entry.entry_id)
    await websocket.send_json({"id": 2, "type": "get_panels"})
    assert panel_url_path(entry) not in (await websocket.receive_json())["result"]
