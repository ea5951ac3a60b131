"""A battery added through the real Add device flow, its envelope typed into number boxes (which
give floats, 3000.0), leaves a node that sets up: whole-step limits are stored as ints."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from tests.fractal_node.conftest import StartEmulator
from tests.fractal_node.helpers import node_entry, setup_entry
from tests.fractal_node.test_device_flow import at_model_step, configure, emulated, only_device


async def test_a_battery_added_with_its_envelope_leaves_a_node_that_sets_up(
    hass: HomeAssistant, modbus_server: StartEmulator
) -> None:
    server = await modbus_server({1: emulated("generic_battery")})
    node = node_entry()
    await setup_entry(hass, node)

    result = await at_model_step(hass, node, server.port)
    result = await configure(hass, result, {"model": "generic_battery"})
    result = await configure(hass, result, {"role": "battery"})
    limits = {"max_charge_w": 3000.0, "max_discharge_w": 2500.0, "soc_min": 10.0, "soc_max": 95.0}
    result = await configure(hass, result, limits)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    stored = only_device(node).data["limits"]
    assert stored == {"max_charge_w": 3000, "max_discharge_w": 2500, "soc_min": 10, "soc_max": 95}
    assert all(type(value) is int for value in stored.values())
    assert node.state is ConfigEntryState.LOADED  # reloaded with the battery, not refused
