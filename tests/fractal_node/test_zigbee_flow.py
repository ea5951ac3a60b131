"""The "Add Zigbee meter" flow: devices of ZHA's network (ZHA on the in-process radio), and
without ZHA a stick checked for other users and for an EZSP answer (emulated NCP, socket://)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fractal.zigbee import ELECTRICAL_MEASUREMENT, METERING
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fractal_node.const import CONF_ROLE
from custom_components.fractal_node.zigbee_meter import (
    CONF_CLUSTERS,
    CONF_IEEE,
    CONF_MANUFACTURER,
    CONF_MODEL,
    SUBENTRY_ZIGBEE_METER,
)
from tests.fractal_node.helpers import node_entry, setup_entry
from tests.fractal_node.zigbee_helpers import (
    async_set_up_zha,
    zha_entry,
    zha_radio,
    zigbee_subentry,
)
from tests.support.ezsp_ncp import EzspNcp
from tests.support.zigbee_radio import clamp_meter, smart_plug

pytestmark = pytest.mark.usefixtures("socket_enabled")  # the emulated stick: 127.0.0.1 only


@pytest.fixture
async def ncp() -> AsyncIterator[EzspNcp]:
    stick = EzspNcp()
    await stick.start()
    yield stick
    await stick.stop()


async def loaded_node(hass: HomeAssistant, *subentries: Any) -> MockConfigEntry:
    entry = node_entry(devices=list(subentries))
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    return entry


async def start(hass: HomeAssistant, entry: MockConfigEntry) -> FlowResult:
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_ZIGBEE_METER), context={"source": "user"}
    )


async def configure(hass: HomeAssistant, result: FlowResult, data: dict[str, Any]) -> FlowResult:
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], data)
    await hass.async_block_till_done()  # a changed subentry reloads the node
    return result


async def test_a_zha_device_becomes_the_grid_meter(hass: HomeAssistant) -> None:
    clamp, plug = clamp_meter(), smart_plug()
    await async_set_up_zha(hass, [clamp, plug])
    entry = await loaded_node(hass)

    result = await start(hass, entry)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["description_placeholders"] == {"found": "2"}
    options = result["data_schema"].schema[CONF_IEEE].config["options"]
    assert [option["label"] for option in options] == [
        "Develco Products A/S ZHEMI101 (00:0d:6f:00:0a:bc:de:01)",
        "Generic Smart plug 16A (54:ef:44:10:00:11:22:33)",
    ]

    result = await configure(hass, result, {CONF_IEEE: clamp.ieee, CONF_ROLE: "grid_meter"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (subentry,) = entry.subentries.values()
    assert subentry.title == "Develco Products A/S ZHEMI101 (00:0d:6f:00:0a:bc:de:01)"
    assert subentry.unique_id == "zigbee_00:0d:6f:00:0a:bc:de:01"
    assert dict(subentry.data) == {
        CONF_IEEE: clamp.ieee,
        CONF_ROLE: "grid_meter",
        CONF_MANUFACTURER: "Develco Products A/S",
        CONF_MODEL: "ZHEMI101",
        CONF_CLUSTERS: [METERING],
    }


async def test_the_same_device_twice_is_refused(hass: HomeAssistant) -> None:
    clamp = clamp_meter()
    await async_set_up_zha(hass, [clamp])
    entry = await loaded_node(hass, zigbee_subentry(clamp))
    result = await start(hass, entry)
    result = await configure(hass, result, {CONF_IEEE: clamp.ieee, CONF_ROLE: "monitor"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_a_second_grid_meter_is_refused_on_the_role(hass: HomeAssistant) -> None:
    clamp, plug = clamp_meter(), smart_plug()
    await async_set_up_zha(hass, [clamp, plug])
    entry = await loaded_node(hass, zigbee_subentry(clamp))
    result = await start(hass, entry)
    result = await configure(hass, result, {CONF_IEEE: plug.ieee, CONF_ROLE: "grid_meter"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_ROLE: "grid_meter_taken"}
    result = await configure(hass, result, {CONF_IEEE: plug.ieee, CONF_ROLE: "monitor"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(entry.subentries) == 2
    added = next(sub for sub in entry.subentries.values() if sub.data[CONF_IEEE] == plug.ieee)
    assert added.data[CONF_CLUSTERS] == [METERING, ELECTRICAL_MEASUREMENT]


async def test_a_device_that_left_while_the_form_was_open(hass: HomeAssistant) -> None:
    clamp, plug = clamp_meter(), smart_plug()
    await async_set_up_zha(hass, [clamp, plug])
    entry = await loaded_node(hass)
    result = await start(hass, entry)
    radio = zha_radio(hass)
    del radio.devices[radio.get_device(nwk=clamp.nwk).ieee]
    result = await configure(hass, result, {CONF_IEEE: clamp.ieee, CONF_ROLE: "grid_meter"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_IEEE: "zigbee_device_gone"}


async def test_a_network_without_meters(hass: HomeAssistant) -> None:
    await async_set_up_zha(hass, [])
    entry = await loaded_node(hass)
    result = await start(hass, entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_zigbee_meters"


async def test_reconfigure_changes_the_role(hass: HomeAssistant) -> None:
    clamp = clamp_meter()
    await async_set_up_zha(hass, [clamp])
    entry = await loaded_node(hass, zigbee_subentry(clamp, role="monitor"))
    (subentry_id,) = entry.subentries
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_ZIGBEE_METER),
        context={"source": "reconfigure", "subentry_id": subentry_id},
    )
    assert result["step_id"] == "reconfigure"
    result = await configure(hass, result, {CONF_ROLE: "grid_meter"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[subentry_id].data[CONF_ROLE] == "grid_meter"
    assert entry.subentries[subentry_id].data[CONF_IEEE] == clamp.ieee


async def test_reconfigure_refuses_a_second_grid_meter(hass: HomeAssistant) -> None:
    clamp, plug = clamp_meter(), smart_plug()
    await async_set_up_zha(hass, [clamp, plug])
    entry = await loaded_node(hass, zigbee_subentry(clamp), zigbee_subentry(plug, "monitor"))
    plug_id = next(sid for sid, sub in entry.subentries.items() if sub.data[CONF_IEEE] == plug.ieee)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_ZIGBEE_METER),
        context={"source": "reconfigure", "subentry_id": plug_id},
    )
    result = await configure(hass, result, {CONF_ROLE: "grid_meter"})
    assert result["errors"] == {CONF_ROLE: "grid_meter_taken"}


async def test_a_stick_zha_is_configured_with_is_not_opened_again(
    hass: HomeAssistant, tmp_path: Path, ncp: EzspNcp
) -> None:
    tty = tmp_path / "ttyUSB0"
    tty.touch()
    by_id = tmp_path / "usb-ITead_Sonoff_Zigbee_3.0_USB_Dongle_Plus_V2-if00-port0"
    by_id.symlink_to(tty)
    zha_entry(str(by_id)).add_to_hass(hass)  # ZHA configured on it (not loaded: retrying)
    zha_entry(ncp.url).add_to_hass(hass)  # and a second ZHA entry on a network coordinator
    entry = await loaded_node(hass)

    result = await start(hass, entry)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "stick"
    result = await configure(hass, result, {"path": str(tty)})
    assert result["errors"] == {"path": "stick_in_use"}
    assert result["description_placeholders"]["owner"] == f"ZHA ({by_id})"
    result = await configure(hass, result, {"path": f"SOCKET://127.0.0.1:{ncp.port}"})
    assert result["errors"] == {"path": "stick_in_use"}
    assert ncp.commands == []  # never opened


async def test_a_free_stick_is_checked_and_zha_recommended(
    hass: HomeAssistant, ncp: EzspNcp
) -> None:
    entry = await loaded_node(hass)
    result = await start(hass, entry)
    result = await configure(hass, result, {"path": f" {ncp.url} "})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "stick_needs_zha"
    assert result["description_placeholders"] == {"path": ncp.url, "version": "8"}
    assert ncp.commands == [(4, 0x0000), (8, 0x0000)]  # bellows' handshake reached it


async def test_a_stick_that_does_not_answer(hass: HomeAssistant) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    entry = await loaded_node(hass)
    result = await start(hass, entry)
    result = await configure(hass, result, {"path": f"socket://127.0.0.1:{port}"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"path": "stick_no_answer"}
    assert f"socket://127.0.0.1:{port}" in result["description_placeholders"]["detail"]
