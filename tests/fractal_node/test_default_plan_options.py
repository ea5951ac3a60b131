"""The default plan's cheap window: set in the options flow (refused with the reason when it
cannot be used) and charging an emulated battery through the executor while it is open."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.util import dt as dt_util

from custom_components.fractal_node.const import (
    CONF_CHEAP_CHARGE_W,
    CONF_CHEAP_WINDOW,
    CONF_DEFAULT_PLAN,
    CONF_TAGS,
)
from tests.fractal_node.conftest import StartEmulator
from tests.fractal_node.helpers import node_entry, setup_entry
from tests.fractal_node.test_device_runtime import BATTERY_LIMITS, device, emulated
from tests.fractal_node.test_node_link import battery_setpoint


async def options(hass: HomeAssistant, entry_id: str, user_input: dict[str, Any]) -> Any:
    result = await hass.config_entries.options.async_init(entry_id)
    assert result["type"] is FlowResultType.FORM
    return await hass.config_entries.options.async_configure(result["flow_id"], user_input)


async def test_a_cheap_window_is_saved_in_the_options(hass: HomeAssistant) -> None:
    entry = node_entry(tags={})
    await setup_entry(hass, entry)
    window = {CONF_CHEAP_WINDOW: "00:30-04:30", CONF_CHEAP_CHARGE_W: 2500}

    result = await options(hass, entry.entry_id, {CONF_TAGS: "", CONF_DEFAULT_PLAN: window})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {CONF_TAGS: {}, CONF_DEFAULT_PLAN: window}
    await hass.async_block_till_done()
    again = await hass.config_entries.options.async_init(entry.entry_id)
    sections = {str(key): value for key, value in again["data_schema"].schema.items()}
    shown = {
        str(key): (key.description or {}).get("suggested_value")
        for key in sections[CONF_DEFAULT_PLAN].schema.schema
    }
    assert shown == window  # shown again to change


@pytest.mark.parametrize(
    ("window", "problem"),
    [
        ({CONF_CHEAP_WINDOW: "tonight", CONF_CHEAP_CHARGE_W: 2500}, "expected HH:MM-HH:MM"),
        ({CONF_CHEAP_WINDOW: "00:30-04:30"}, "the cheap window needs a charge power"),
        ({CONF_CHEAP_CHARGE_W: 2500}, "the cheap window needs its times"),
        ({CONF_CHEAP_WINDOW: "02:00-02:00", CONF_CHEAP_CHARGE_W: 1}, "starts and ends"),
    ],
)
async def test_a_cheap_window_that_cannot_be_used_is_refused_saying_why(
    hass: HomeAssistant, window: dict[str, Any], problem: str
) -> None:
    entry = node_entry(tags={})
    await setup_entry(hass, entry)

    result = await options(hass, entry.entry_id, {CONF_TAGS: "", CONF_DEFAULT_PLAN: window})

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_cheap_window"}
    assert problem in result["description_placeholders"]["cheap_window_problem"]
    assert entry.options == {CONF_TAGS: {}}


def open_window_now() -> str:
    """A window in Home Assistant's time zone around now: an hour either side."""
    local = dt_util.now()
    start = (local - timedelta(hours=1)).replace(second=0, microsecond=0)
    start -= timedelta(minutes=start.minute % 30)
    end = local + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


async def test_the_battery_charges_in_the_cheap_window_without_a_plan(
    hass: HomeAssistant, modbus_server: StartEmulator
) -> None:
    battery = emulated("generic_battery", power=0, soc=57.5)
    server = await modbus_server({1: emulated("eastron_sdm230", power=500.0), 3: battery})
    entry = node_entry(
        devices=[
            device(server.port, 1, "eastron_sdm230", "grid_meter"),
            device(server.port, 3, "generic_battery", "battery", limits=BATTERY_LIMITS),
        ]
    )
    window = {CONF_CHEAP_WINDOW: open_window_now(), CONF_CHEAP_CHARGE_W: 2000}
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, options={CONF_TAGS: {}, CONF_DEFAULT_PLAN: window}
    )
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    executor = entry.runtime_data.executor
    assert executor is not None

    await executor.async_tick(datetime.now(dt_util.UTC))

    assert battery_setpoint(battery) == (2000, 1)  # charge, from the default plan
    (setpoint,) = (s for s in executor.coordinator.data.setpoints.values() if s.value == 2000)
    assert setpoint.source == "default"


async def test_a_stored_window_that_no_longer_parses_is_logged_and_left_out(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    entry = node_entry(tags={})
    entry.add_to_hass(hass)
    broken = {CONF_CHEAP_WINDOW: "25:00-04:00", CONF_CHEAP_CHARGE_W: 2000}
    hass.config_entries.async_update_entry(
        entry, options={CONF_TAGS: {}, CONF_DEFAULT_PLAN: broken}
    )
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert "The default plan's cheap window is not used" in caplog.text
    assert "hour must be in 0..23" in caplog.text
    assert entry.state is ConfigEntryState.LOADED  # the node runs, its default only balances
