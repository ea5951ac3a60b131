"""Home Assistant's ZHA set up on the in-process radio of tests/support/zigbee_radio.py.

Only the radio driver is replaced: bellows' `ControllerApplication.new` (what ZHA calls for an
EZSP stick) returns a `FakeRadio` with the simulated meters paired. ZHA itself (its radio
manager, gateway, device and cluster handling) and zigpy run unchanged, but for the pause ZHA
makes between two openings of a serial port.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

# Imported before any test freezes the clock: mashumaro (in homeassistant_hardware, a ZHA
# dependency) builds its decoders at import and fails on freezegun's datetime class.
from homeassistant.components.zha.helpers import get_zha_gateway
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fractal_node.const import CONF_ROLE
from custom_components.fractal_node.zigbee_meter import (
    CONF_CLUSTERS,
    CONF_IEEE,
    CONF_MANUFACTURER,
    CONF_MODEL,
    SUBENTRY_ZIGBEE_METER,
    zigbee_unique_id,
)
from tests.support.zigbee_radio import FakeRadio, SimulatedMeter

ZHA_STICK = "/dev/serial/by-id/usb-Nabu_Casa_SkyConnect_v1.0-if00-port0"


def zha_entry(path: str = ZHA_STICK) -> MockConfigEntry:
    """A ZHA entry as ZHA's own flow stores it for an EZSP stick."""
    return MockConfigEntry(
        domain="zha",
        version=4,
        title=path,
        data={
            "device": {"path": path, "baudrate": 115200, "flow_control": None},
            "radio_type": "ezsp",
        },
    )


@contextmanager
def in_process_radio(meters: list[SimulatedMeter]) -> Iterator[None]:
    """While open, ZHA's EZSP stick is a new `FakeRadio` holding `meters` at each opening."""

    async def new_radio(
        config: dict[str, Any], auto_form: bool = False, start_radio: bool = True
    ) -> FakeRadio:
        radio = FakeRadio.create()
        for meter in meters:
            radio.join(meter)
        if start_radio:
            await radio.startup(auto_form=auto_form)
        return radio

    # ZHA waits CONNECT_DELAY_S between its two openings of the stick (a real serial port needs
    # it); under a frozen clock that sleep would never end, and the in-process radio needs none.
    with (
        patch("bellows.zigbee.application.ControllerApplication.new", side_effect=new_radio),
        patch("homeassistant.components.zha.radio_manager.CONNECT_DELAY_S", 0),
    ):
        yield


async def async_set_up_zha(hass: HomeAssistant, meters: list[SimulatedMeter]) -> MockConfigEntry:
    """ZHA loaded, its network holding `meters`."""
    entry = zha_entry()
    entry.add_to_hass(hass)
    with in_process_radio(meters):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return entry


def zha_radio(hass: HomeAssistant) -> FakeRadio:
    radio = get_zha_gateway(hass).application_controller
    assert isinstance(radio, FakeRadio)
    return radio


def zigbee_subentry(sim: SimulatedMeter, role: str = "grid_meter") -> ConfigSubentryData:
    """As the "Add Zigbee meter" flow stores it."""
    return ConfigSubentryData(
        data={
            CONF_IEEE: sim.ieee,
            CONF_ROLE: role,
            CONF_MANUFACTURER: sim.manufacturer,
            CONF_MODEL: sim.model,
            CONF_CLUSTERS: sorted(sim.attributes),
        },
        subentry_type=SUBENTRY_ZIGBEE_METER,
        title=f"{sim.manufacturer} {sim.model} ({sim.ieee})",
        unique_id=zigbee_unique_id(sim.ieee),
    )
