"""A Glow CAD as a smart meter of the node, with a real mosquitto carrying recorded-format Glow
messages (tests/support/glow_messages.py): through the node's own broker connection and through
Home Assistant's MQTT integration; glitches not passed on; silence; the grid-meter role."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.diagnostics import REDACTED
from homeassistant.components.sensor import SensorExtraStoredData
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_USERNAME,
    STATE_UNAVAILABLE,
    EntityCategory,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    mock_restore_cache_with_extra_data,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.fractal_node.const import DOMAIN
from custom_components.fractal_node.glow_mqtt import (
    PROBLEM_NO_HA_MQTT,
    Connection,
)
from custom_components.fractal_node.meter_entities import (
    ISSUE_METER_SILENT,
    SILENCE_AFTER,
    SILENT_ISSUE_AFTER,
)
from tests.fractal_node.glow_support import glow_subentry, set_up_ha_mqtt
from tests.fractal_node.helpers import NODE_ID, node_entry, setup_entry, until
from tests.support import glow_messages as glow
from tests.support.glow_messages import broker_directory, publish
from tests.support.plain_mosquitto import PlainMosquitto

pytestmark = pytest.mark.usefixtures("socket_enabled")

T0 = "2026-11-22T12:00:00Z"


def stamp(seconds: int) -> str:
    return f"2026-11-22T12:{seconds // 60:02d}:{seconds % 60:02d}Z"


@pytest.fixture
def broker(socket_enabled: None) -> Iterator[PlainMosquitto]:
    with PlainMosquitto.started(broker_directory()) as running:
        yield running


def electricity(seconds: int, **values: float) -> tuple[str, bytes]:
    return glow.electricity_topic(), glow.electricity(stamp(seconds), **values)


def power_only(seconds: int, kw: float) -> tuple[str, bytes]:
    """A CAD message with only the power in it (the parser takes missing parts as unknown)."""
    document = {
        "electricitymeter": {"timestamp": stamp(seconds), "power": {"value": kw, "units": "kW"}}
    }
    return glow.electricity_topic(), json.dumps(document).encode()


class Meter:
    """The meter's entities by key, and the node's grid power."""

    def __init__(self, hass: HomeAssistant, entry: MockConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self.subentry_id = next(iter(entry.subentries))
        self.registry = er.async_get(hass)

    def entity_id(self, key: str) -> str:
        entity_id = self.registry.async_get_entity_id(
            "sensor", DOMAIN, f"{NODE_ID}_{self.subentry_id}_{key}"
        )
        assert entity_id is not None, key
        return entity_id

    def state(self, key: str) -> State:
        state = self.hass.states.get(self.entity_id(key))
        assert state is not None
        return state

    def value(self, key: str) -> float | str:
        raw = self.state(key).state
        try:
            return float(raw)
        except ValueError:
            return raw

    def grid(self) -> str:
        entity_id = self.registry.async_get_entity_id("sensor", DOMAIN, f"{NODE_ID}_grid_power")
        assert entity_id is not None
        state = self.hass.states.get(entity_id)
        assert state is not None
        return state.state

    @property
    def issue_id(self) -> str:
        return f"{ISSUE_METER_SILENT}_{self.entry.entry_id}_{self.subentry_id}"


async def until_frozen(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, condition: Callable[[], bool]
) -> None:
    """`until` for a test with the clock frozen (the loop's timers wait for fake time): real
    time passes in a worker thread, and fake time moves on with it so the MQTT clients' own
    timers (reconnects, keep-alives) run."""
    for _ in range(1500):  # about 30 s
        if condition():
            return
        await hass.async_add_executor_job(time.sleep, 0.02)
        freezer.tick(0.02)
        async_fire_time_changed(hass)
    raise AssertionError("the condition never held")


async def started(hass: HomeAssistant, subentry: ConfigSubentryData) -> Meter:
    entry = node_entry(devices=[subentry])
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    return Meter(hass, entry)


async def test_own_broker_values_units_and_grid_power(
    hass: HomeAssistant, broker: PlainMosquitto
) -> None:
    # Retained: delivered as soon as the node subscribes, so the test knows it has.
    await publish(broker.port, (glow.state_topic(), glow.state(T0)), retain=True)
    meter = await started(hass, glow_subentry(Connection.BROKER, broker.port))
    await until(lambda: meter.state("link_status").state == "joined")
    assert meter.value("signal_strength") == -47
    assert meter.state("signal_strength").attributes["unit_of_measurement"] == "dBm"
    assert meter.value("link_quality") == 212
    for key in ("signal_strength", "link_quality", "link_status"):
        entity = meter.registry.async_get(meter.entity_id(key))
        assert entity is not None
        assert entity.entity_category is EntityCategory.DIAGNOSTIC

    await publish(broker.port, electricity(10), (glow.gas_topic(), glow.gas(stamp(11))))
    await until(lambda: meter.state("gas_volume").state != STATE_UNAVAILABLE)

    assert meter.value("import_power") == 623
    assert meter.value("export_power") == 0
    assert meter.grid() == "623.0"  # the grid-meter role feeds the node's power flows
    imported = meter.state("import_energy")
    assert float(imported.state) == pytest.approx(4595.563)
    assert imported.attributes["unit_of_measurement"] == "kWh"
    assert imported.attributes["state_class"] == "total_increasing"  # Energy dashboard
    assert imported.attributes["device_class"] == "energy"
    assert meter.value("export_energy") == pytest.approx(12.5)
    assert meter.value("gas_energy") == pytest.approx(7063.546)
    assert meter.state("gas_volume").attributes["unit_of_measurement"] == "m³"
    assert meter.state("gas_volume").attributes["state_class"] == "total_increasing"
    assert meter.value("gas_volume") == pytest.approx(629.514)
    assert meter.value("unit_rate") == pytest.approx(0.3)
    assert meter.state("unit_rate").attributes["unit_of_measurement"] == "GBP/kWh"
    assert meter.value("standing_charge") == pytest.approx(0.4457)
    assert meter.value("gas_unit_rate") == pytest.approx(0.1024)
    assert meter.value("gas_standing_charge") == pytest.approx(0.2684)

    await publish(broker.port, electricity(20, power_kw=-1.25))
    await until(lambda: meter.value("export_power") == 1250)
    assert meter.value("import_power") == 0
    assert meter.grid() == "-1250.0"


async def test_glitches_are_not_passed_on(
    hass: HomeAssistant, broker: PlainMosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    await publish(broker.port, electricity(10), retain=True)
    meter = await started(hass, glow_subentry(Connection.BROKER, broker.port))
    await until(lambda: meter.state("import_power").state == "623.0")
    seen: dict[str, list[str]] = {}
    keys = ("import_power", "export_power", "import_energy", "export_energy")

    @callback  # in the loop, as the state is written (a plain function runs in a worker)
    def record(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        assert new is not None
        seen.setdefault(event.data["entity_id"], []).append(new.state)

    async_track_state_change_event(hass, [meter.entity_id(k) for k in keys], record)
    with caplog.at_level(logging.WARNING):
        await publish(
            broker.port,
            # counters drop to 0 / go backwards, and the no-demand sentinel
            electricity(20, import_kwh=0, export_kwh=10.0, power_kw=glow.SENTINEL_KW),
            power_only(5, 5.0),  # late
            power_only(10, 9.0),  # duplicated timestamp
            (glow.electricity_topic(), b"{garbage"),
            (glow.electricity_topic(), b'{"electricitymeter": {}}'),
            power_only(30, 0.7),  # the marker: a good reading after all of them
        )
        await until(lambda: meter.state("import_power").state == "700.0")

    assert seen == {meter.entity_id("import_power"): ["700.0"]}
    assert float(meter.state("import_energy").state) == pytest.approx(4595.563)
    assert float(meter.state("export_energy").state) == pytest.approx(12.5)
    assert meter.grid() == "700.0"
    unreadable = [r for r in caplog.records if "unreadable message" in r.getMessage()]
    assert len(unreadable) == 1  # once, not once per message
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert any("dropped_to_zero" in m for m in dropped)
    assert any("went_backwards" in m for m in dropped)
    assert any("sentinel" in m for m in dropped)


async def test_through_home_assistant_mqtt(
    hass: HomeAssistant, broker: PlainMosquitto, tmp_path: Path
) -> None:
    await set_up_ha_mqtt(hass, broker, tmp_path)
    await publish(broker.port, (glow.state_topic(), glow.state(T0)), retain=True)

    meter = await started(hass, glow_subentry(Connection.HOME_ASSISTANT))
    await until(lambda: meter.state("link_status").state == "joined")
    await publish(
        broker.port,
        electricity(10, power_kw=2.5),
        (glow.electricity_topic(glow.OTHER_DEVICE_ID), glow.electricity(stamp(11), power_kw=9)),
        power_only(12, glow.SENTINEL_KW),
        power_only(13, 2.0),
    )
    await until(lambda: meter.state("import_power").state == "2000.0")
    assert meter.grid() == "2000.0"
    assert float(meter.state("import_energy").state) == pytest.approx(4595.563)

    assert await hass.config_entries.async_unload(meter.entry.entry_id)
    await hass.async_block_till_done()


async def test_without_home_assistant_mqtt_the_meter_is_silent_and_says_why(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    meter = await started(hass, glow_subentry(Connection.HOME_ASSISTANT))

    assert meter.state("import_power").state == STATE_UNAVAILABLE
    assert meter.grid() == STATE_UNAVAILABLE
    freezer.tick(SILENT_ISSUE_AFTER + timedelta(minutes=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, meter.issue_id)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["reason"] == PROBLEM_NO_HA_MQTT


async def test_silence_unavailable_then_repair_issue_then_back(
    hass: HomeAssistant, broker: PlainMosquitto, freezer: FrozenDateTimeFactory
) -> None:
    await publish(broker.port, electricity(10), retain=True)
    meter = await started(hass, glow_subentry(Connection.BROKER, broker.port))
    await until_frozen(hass, freezer, lambda: meter.state("import_power").state == "623.0")
    issues = ir.async_get(hass)

    freezer.tick(SILENCE_AFTER + timedelta(seconds=30))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert meter.state("import_power").state == STATE_UNAVAILABLE
    assert meter.state("import_energy").state == STATE_UNAVAILABLE
    assert meter.grid() == STATE_UNAVAILABLE
    assert issues.async_get_issue(DOMAIN, meter.issue_id) is None  # not yet: a CAD reboots

    freezer.tick(SILENT_ISSUE_AFTER)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    issue = issues.async_get_issue(DOMAIN, meter.issue_id)
    assert issue is not None
    assert issue.translation_key == ISSUE_METER_SILENT
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["name"] == f"Glow CAD {glow.DEVICE_ID}"
    assert int(issue.translation_placeholders["minutes"]) >= 30

    # Retained: the client may be reconnecting after half an hour of fake time (keep-alive).
    await publish(broker.port, electricity(60, power_kw=0.9), retain=True)
    await until_frozen(hass, freezer, lambda: meter.state("import_power").state == "900.0")
    assert meter.grid() == "900.0"
    assert issues.async_get_issue(DOMAIN, meter.issue_id) is None


async def test_a_monitor_only_meter_feeds_no_power_flow(
    hass: HomeAssistant, broker: PlainMosquitto
) -> None:
    await publish(broker.port, electricity(10), retain=True)
    meter = await started(hass, glow_subentry(Connection.BROKER, broker.port, role="monitor"))
    await until(lambda: meter.state("import_power").state == "623.0")
    assert meter.grid() == STATE_UNAVAILABLE  # the node has no grid meter


async def test_a_counter_restored_after_a_restart_guards_against_a_first_zero(
    hass: HomeAssistant, broker: PlainMosquitto
) -> None:
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(f"sensor.glow_cad_{glow.DEVICE_ID.lower()}_energy_imported", "4595.563"),
                SensorExtraStoredData(4_595_563.0, "Wh").as_dict(),
            )
        ],
    )
    await publish(broker.port, electricity(10, import_kwh=0, power_kw=0.4), retain=True)
    meter = await started(hass, glow_subentry(Connection.BROKER, broker.port))
    await until(lambda: meter.state("import_power").state == "400.0")
    assert float(meter.state("import_energy").state) == pytest.approx(4595.563)


async def test_unload_stops_the_meter_and_clears_its_issue(
    hass: HomeAssistant, broker: PlainMosquitto, freezer: FrozenDateTimeFactory
) -> None:
    await publish(broker.port, electricity(10), retain=True)
    meter = await started(hass, glow_subentry(Connection.BROKER, broker.port))
    await until_frozen(hass, freezer, lambda: meter.state("import_power").state == "623.0")
    freezer.tick(SILENCE_AFTER + SILENT_ISSUE_AFTER)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, meter.issue_id) is not None

    assert await hass.config_entries.async_unload(meter.entry.entry_id)
    await hass.async_block_till_done()
    assert meter.entry.state is ConfigEntryState.NOT_LOADED
    assert ir.async_get(hass).async_get_issue(DOMAIN, meter.issue_id) is None


async def test_diagnostics_show_the_meter_without_its_broker_or_login(
    hass: HomeAssistant, broker: PlainMosquitto, hass_client: ClientSessionGenerator
) -> None:
    assert await async_setup_component(hass, "diagnostics", {})
    await publish(broker.port, electricity(10), retain=True)
    subentry = glow_subentry(Connection.BROKER, broker.port)
    subentry["data"] = {**subentry["data"], CONF_USERNAME: "householder", CONF_PASSWORD: "pw"}
    meter = await started(hass, subentry)
    await until(lambda: meter.state("import_power").state == "623.0")

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, meter.entry)

    (shown,) = diagnostics["meters"]
    assert shown["type"] == "glow_mqtt"
    assert shown["data"][CONF_HOST] == REDACTED
    assert shown["data"][CONF_USERNAME] == REDACTED
    assert shown["data"][CONF_PASSWORD] == REDACTED
    assert shown["data"]["device_id"] == glow.DEVICE_ID
    assert shown["silent"] is False
    assert shown["problem"] is None
    assert shown["values"]["power"] == {"value": 623.0, "stamped": "2026-11-22T12:00:10+00:00"}
    assert "pw" not in json.dumps(diagnostics)
