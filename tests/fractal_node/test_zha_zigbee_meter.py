"""Zigbee meters of the node through Home Assistant's ZHA, on an in-process radio whose
simulated clamp meter and smart plug answer and report with real ZCL frames."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fractal.zigbee import ELECTRICAL_MEASUREMENT, METERING
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.fractal_node.const import DOMAIN
from custom_components.fractal_node.meter_entities import (
    ISSUE_METER_SILENT,
    SILENCE_AFTER,
    SILENT_ISSUE_AFTER,
)
from custom_components.fractal_node.zigbee_meter import (
    CONF_IEEE,
    POLL_INTERVAL,
)
from tests.fractal_node.helpers import NODE_ID, node_entry, setup_entry
from tests.fractal_node.zigbee_helpers import (
    async_set_up_zha,
    in_process_radio,
    zha_radio,
    zigbee_subentry,
)
from tests.support.zigbee_radio import NO_ROUTE, SimulatedMeter, clamp_meter, smart_plug


class Node:
    """The node's Zigbee meters' entities by (meter, key), and its grid power."""

    def __init__(self, hass: HomeAssistant, entry: MockConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self.registry = er.async_get(hass)
        self.subentries = {sub.data[CONF_IEEE]: sid for sid, sub in entry.subentries.items()}

    def state(self, sim: SimulatedMeter, key: str) -> State:
        unique_id = f"{NODE_ID}_{self.subentries[sim.ieee]}_{key}"
        entity_id = self.registry.async_get_entity_id("sensor", DOMAIN, unique_id)
        assert entity_id is not None, key
        state = self.hass.states.get(entity_id)
        assert state is not None
        return state

    def value(self, sim: SimulatedMeter, key: str) -> str:
        return self.state(sim, key).state

    def grid(self) -> str:
        entity_id = self.registry.async_get_entity_id("sensor", DOMAIN, f"{NODE_ID}_grid_power")
        assert entity_id is not None
        state = self.hass.states.get(entity_id)
        assert state is not None
        return state.state

    def issue_id(self, sim: SimulatedMeter) -> str:
        return f"{ISSUE_METER_SILENT}_{self.entry.entry_id}_{self.subentries[sim.ieee]}"


async def started(hass: HomeAssistant, *subentries: ConfigSubentryData) -> Node:
    entry = node_entry(devices=list(subentries))
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    return Node(hass, entry)


async def settle(hass: HomeAssistant) -> None:
    """Until the meters' polls (background tasks) and the radio's answers are done."""
    await hass.async_block_till_done(wait_background_tasks=True)


async def tick(hass: HomeAssistant, freezer: FrozenDateTimeFactory, by: timedelta) -> None:
    freezer.tick(by)
    async_fire_time_changed(hass)
    await settle(hass)


async def test_a_clamp_meter_through_zha_is_the_grid_meter(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    clamp, plug = clamp_meter(multiplier=2), smart_plug()
    await async_set_up_zha(hass, [clamp, plug])
    node = await started(hass, zigbee_subentry(clamp), zigbee_subentry(plug, role="monitor"))
    await settle(hass)

    # Read through ZHA's radio and scaled by the device's own multiplier 2 and divisor 1000.
    assert float(node.value(clamp, "import_power")) == pytest.approx(2468)
    assert float(node.value(clamp, "export_power")) == 0
    imported = node.state(clamp, "import_energy")
    assert float(imported.state) == pytest.approx(10_000)  # kWh
    assert imported.attributes["state_class"] == "total_increasing"
    assert float(node.value(clamp, "export_energy")) == pytest.approx(500)
    assert float(node.value(clamp, "link_quality")) == 200
    assert float(node.value(clamp, "signal_strength")) == -60
    assert node.grid() == "2468.0"  # the grid meter feeds the node's power flows

    await settle(hass)
    assert float(node.value(plug, "import_power")) == pytest.approx(234.5)  # 2345 / 10 W
    assert float(node.value(plug, "import_energy")) == pytest.approx(123.45)  # kWh

    # A report over the air: 1.5 kW exported (the meter's sign: negative is received).
    freezer.tick(timedelta(seconds=1))
    zha_radio(hass).receive(clamp.report(METERING, {"instantaneous_demand": -750}))
    await hass.async_block_till_done()
    assert float(node.value(clamp, "export_power")) == pytest.approx(1500)
    assert float(node.value(clamp, "import_power")) == 0
    assert node.grid() == "-1500.0"

    freezer.tick(timedelta(seconds=1))
    zha_radio(hass).receive(plug.report(ELECTRICAL_MEASUREMENT, {"active_power": 20000}))
    await hass.async_block_till_done()
    assert float(node.value(plug, "import_power")) == pytest.approx(2000)
    assert node.grid() == "-1500.0"  # a monitor-only meter feeds no flow


async def test_after_a_zha_reload_the_meter_follows_the_new_network(
    hass: HomeAssistant,
) -> None:
    # The real clock: ZHA's shutdown sleeps a moment, which a frozen clock never ends.
    clamp = clamp_meter()
    zha = await async_set_up_zha(hass, [clamp])
    node = await started(hass, zigbee_subentry(clamp))
    await settle(hass)
    before = zha_radio(hass)

    with in_process_radio([clamp]):
        assert await hass.config_entries.async_reload(zha.entry_id)
        await hass.async_block_till_done()
    after = zha_radio(hass)
    assert after is not before
    clamp.attributes[METERING]["instantaneous_demand"] = 4000
    async_fire_time_changed(hass, dt_util.utcnow() + POLL_INTERVAL)  # the next poll
    await settle(hass)
    assert float(node.value(clamp, "import_power")) == pytest.approx(4000)  # via the new radio
    old, new = (
        radio.get_device(nwk=clamp.nwk).endpoints[1].in_clusters[METERING]
        for radio in (before, after)
    )
    assert _followed_by_the_node(new)
    assert not _followed_by_the_node(old)


def _followed_by_the_node(cluster: Any) -> bool:
    return any(
        type(listener).__name__ == "_ClusterListener" for listener, _ in cluster._listeners.values()
    )


async def test_garbage_on_the_air_changes_nothing(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    clamp = clamp_meter()
    await async_set_up_zha(hass, [clamp])
    node = await started(hass, zigbee_subentry(clamp))
    await settle(hass)

    freezer.tick(timedelta(seconds=1))
    radio = zha_radio(hass)
    radio.receive(clamp.raw_frame(METERING, b"\x18\x42\x0a\x00\x04\x2a\x01"))  # cut short
    radio.receive(clamp.raw_frame(METERING, b"\x08"))
    radio.receive(clamp.report(METERING, {"instantaneous_demand": -0x800000}))  # no value
    await hass.async_block_till_done()
    assert float(node.value(clamp, "import_power")) == pytest.approx(1234)
    assert float(node.value(clamp, "import_energy")) == pytest.approx(5000)


async def test_a_meter_out_of_range_goes_unavailable_then_comes_back(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    clamp = clamp_meter()
    await async_set_up_zha(hass, [clamp])
    node = await started(hass, zigbee_subentry(clamp))
    await settle(hass)
    issues = ir.async_get(hass)

    clamp.reachable = False  # unplugged: the minute polls are not delivered
    await tick(hass, freezer, SILENCE_AFTER + timedelta(seconds=30))
    assert node.value(clamp, "import_power") == STATE_UNAVAILABLE
    assert node.value(clamp, "import_energy") == STATE_UNAVAILABLE
    assert node.grid() == STATE_UNAVAILABLE
    await tick(hass, freezer, SILENT_ISSUE_AFTER)
    issue = issues.async_get_issue(DOMAIN, node.issue_id(clamp))
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert "no answer from the device" in issue.translation_placeholders["reason"]

    clamp.reachable = True
    clamp.attributes[METERING]["instantaneous_demand"] = 321
    await tick(hass, freezer, POLL_INTERVAL)
    await settle(hass)
    assert float(node.value(clamp, "import_power")) == pytest.approx(321)
    assert node.grid() == "321.0"
    assert issues.async_get_issue(DOMAIN, node.issue_id(clamp)) is None
    # Once when it stopped answering (not at each of the ~30 failed polls), once when back.
    title = "Develco Products A/S ZHEMI101 (00:0d:6f:00:0a:bc:de:01)"
    logged = [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name == "custom_components.fractal_node.zigbee_meter"
    ]
    assert logged == [
        ("WARNING", f"{title} stopped answering: no answer from the device: {NO_ROUTE}"),
        ("INFO", f"{title} answers again"),
    ]


async def test_a_divisor_of_zero_gives_no_reading_and_says_why_once(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    clamp = clamp_meter(divisor=0)
    await async_set_up_zha(hass, [clamp])
    node = await started(hass, zigbee_subentry(clamp))
    await settle(hass)
    await tick(hass, freezer, POLL_INTERVAL)  # read again: still 0, not logged again
    assert node.value(clamp, "import_power") == STATE_UNAVAILABLE
    source = node.entry.runtime_data.meters[node.subentries[clamp.ieee]]
    assert source.problem == "Metering: the device reports a divisor of 0"
    logged = [r for r in caplog.records if "divisor of 0" in r.getMessage()]
    assert [r.levelname for r in logged] == ["WARNING"]


async def test_a_plug_with_only_electrical_measurement(hass: HomeAssistant) -> None:
    plug = smart_plug()
    del plug.attributes[METERING]
    await async_set_up_zha(hass, [plug])
    node = await started(hass, zigbee_subentry(plug, role="monitor"))
    await settle(hass)
    assert float(node.value(plug, "import_power")) == pytest.approx(234.5)
    unique_id = f"{NODE_ID}_{node.subentries[plug.ieee]}_import_energy"
    assert node.registry.async_get_entity_id("sensor", DOMAIN, unique_id) is None


async def test_without_zha_the_meter_is_silent_and_says_why(hass: HomeAssistant) -> None:
    clamp = clamp_meter()
    node = await started(hass, zigbee_subentry(clamp))
    await hass.async_block_till_done()
    assert node.value(clamp, "import_power") == STATE_UNAVAILABLE
    source = node.entry.runtime_data.meters[node.subentries[clamp.ieee]]
    assert source.problem is not None
    assert "ZHA is not loaded" in source.problem


async def test_a_device_removed_from_zha_says_so(hass: HomeAssistant) -> None:
    clamp, plug = clamp_meter(), smart_plug()
    await async_set_up_zha(hass, [plug])  # the clamp was removed from ZHA's network
    node = await started(hass, zigbee_subentry(clamp))
    await hass.async_block_till_done()
    source = node.entry.runtime_data.meters[node.subentries[clamp.ieee]]
    assert source.problem == "the device is no longer in ZHA's Zigbee network"


async def test_unload_stops_following_the_device(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    clamp = clamp_meter()
    await async_set_up_zha(hass, [clamp])
    node = await started(hass, zigbee_subentry(clamp))
    await settle(hass)
    assert await hass.config_entries.async_unload(node.entry.entry_id)
    await hass.async_block_till_done()
    cluster = zha_radio(hass).get_device(nwk=clamp.nwk).endpoints[1].in_clusters[METERING]
    assert not _followed_by_the_node(cluster)
