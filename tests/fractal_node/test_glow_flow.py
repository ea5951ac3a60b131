"""The "Add smart meter (Glow)" subentry flow against a real mosquitto: CADs found from their
STATE messages, typed in by hand, broker down, refused credentials, both connections."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fractal_node import glow_flow
from custom_components.fractal_node.const import CONF_ROLE, SUBENTRY_MODBUS_DEVICE
from custom_components.fractal_node.glow_mqtt import (
    CONF_CONNECTION,
    CONF_DEVICE_ID,
    CONF_TLS,
    SUBENTRY_GLOW_MQTT,
    Connection,
)
from tests.fractal_node.glow_support import glow_subentry, set_up_ha_mqtt
from tests.fractal_node.helpers import node_entry, setup_entry
from tests.support import glow_messages as glow
from tests.support.glow_messages import broker_directory, password_file, publish
from tests.support.plain_mosquitto import PlainMosquitto, free_port

pytestmark = pytest.mark.usefixtures("socket_enabled")

USER, PASSWORD = "householder", "glow-pass"


@pytest.fixture(autouse=True)
def short_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listen 2 s for CADs, not 12: the tests' CADs are retained, so they come at once."""
    monkeypatch.setattr(glow_flow, "DISCOVERY_SECONDS", 2.0)


@pytest.fixture
def broker(socket_enabled: None) -> Iterator[PlainMosquitto]:
    with PlainMosquitto.started(broker_directory()) as running:
        yield running


@pytest.fixture
def password_broker(socket_enabled: None) -> Iterator[PlainMosquitto]:
    directory = broker_directory()
    with PlainMosquitto.started(directory, password_file(directory, USER, PASSWORD)) as running:
        yield running


async def two_cads(port: int, **login: str) -> None:
    """Two CADs on the broker, their STATE retained as the last one each sent."""
    await publish(
        port,
        (glow.state_topic(), glow.state("2026-11-22T12:00:00Z")),
        (
            glow.state_topic(glow.OTHER_DEVICE_ID),
            glow.state("2026-11-22T12:00:01Z", glow.OTHER_DEVICE_ID),
        ),
        retain=True,
        **login,
    )


async def node(
    hass: HomeAssistant, devices: list[ConfigSubentryData] | None = None
) -> MockConfigEntry:
    entry = node_entry(devices=devices)
    await setup_entry(hass, entry)
    return entry


async def start(hass: HomeAssistant, entry: MockConfigEntry) -> FlowResult:
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_GLOW_MQTT), context={"source": "user"}
    )


async def configure(
    hass: HomeAssistant, result: FlowResult, user_input: dict[str, Any]
) -> FlowResult:
    return await hass.config_entries.subentries.async_configure(result["flow_id"], user_input)


def broker_input(port: int, **extra: Any) -> dict[str, Any]:
    return {CONF_HOST: "127.0.0.1", CONF_PORT: port, CONF_TLS: False, **extra}


def glow_devices(entry: MockConfigEntry) -> list[Any]:
    return [s for s in entry.subentries.values() if s.subentry_type == SUBENTRY_GLOW_MQTT]


async def test_a_cad_found_on_the_nodes_own_broker_connection_is_added(
    hass: HomeAssistant, password_broker: PlainMosquitto
) -> None:
    await two_cads(password_broker.port, username=USER, password=PASSWORD)
    entry = await node(hass)

    result = await start(hass, entry)  # no MQTT integration: straight to the broker
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "broker"
    login = {CONF_USERNAME: USER, CONF_PASSWORD: PASSWORD}
    result = await configure(hass, result, broker_input(password_broker.port, **login))
    assert result["step_id"] == "device"
    assert result["description_placeholders"] == {"found": "2"}
    schema = result["data_schema"]
    assert schema is not None
    selector = schema.schema[CONF_DEVICE_ID]
    labels = {o["value"]: o["label"] for o in selector.config["options"]}
    assert labels[glow.DEVICE_ID] == f"{glow.DEVICE_ID} (GLOW-IHD-01-1v4-SMETS2, v1.8.13)"
    assert set(labels) == {glow.DEVICE_ID, glow.OTHER_DEVICE_ID}

    result = await configure(
        hass, result, {CONF_DEVICE_ID: glow.OTHER_DEVICE_ID, CONF_ROLE: "grid_meter"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (added,) = glow_devices(entry)
    assert added.title == f"Glow CAD {glow.OTHER_DEVICE_ID}"
    assert added.unique_id == f"glow_{glow.OTHER_DEVICE_ID}"
    assert dict(added.data) == {
        CONF_CONNECTION: Connection.BROKER.value,
        CONF_HOST: "127.0.0.1",
        CONF_PORT: password_broker.port,
        CONF_USERNAME: USER,
        CONF_PASSWORD: PASSWORD,
        CONF_TLS: False,
        CONF_DEVICE_ID: glow.OTHER_DEVICE_ID,
        CONF_ROLE: "grid_meter",
    }
    await hass.async_block_till_done()  # the node reloads with its new meter
    assert added.subentry_id in entry.runtime_data.meters


async def test_broker_problems_are_shown_on_the_form(
    hass: HomeAssistant, password_broker: PlainMosquitto
) -> None:
    entry = await node(hass)
    result = await start(hass, entry)

    result = await configure(
        hass, result, {CONF_HOST: "mqtt://broker", CONF_PORT: 1883, CONF_TLS: False}
    )
    assert result["errors"] == {CONF_HOST: "invalid_host"}

    result = await configure(hass, result, broker_input(free_port()))
    assert result["errors"] == {"base": "cannot_connect"}
    assert result["description_placeholders"]["detail"]

    wrong = {CONF_USERNAME: USER, CONF_PASSWORD: "not-it"}
    result = await configure(hass, result, broker_input(password_broker.port, **wrong))
    assert result["errors"] == {"base": "invalid_auth"}
    assert result["step_id"] == "broker"


async def test_a_cad_not_heard_in_time_is_typed_in(
    hass: HomeAssistant, broker: PlainMosquitto
) -> None:
    entry = await node(hass)
    result = await configure(hass, await start(hass, entry), broker_input(broker.port))
    assert result["step_id"] == "device"
    assert result["description_placeholders"] == {"found": "0"}

    result = await configure(hass, result, {CONF_DEVICE_ID: "glow/+", CONF_ROLE: "grid_meter"})
    assert result["errors"] == {CONF_DEVICE_ID: "invalid_device_id"}
    result = await configure(
        hass, result, {CONF_DEVICE_ID: f"  {glow.DEVICE_ID} ", CONF_ROLE: "monitor"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (added,) = glow_devices(entry)
    assert added.data[CONF_DEVICE_ID] == glow.DEVICE_ID
    assert added.data[CONF_ROLE] == "monitor"


async def test_the_same_cad_twice_aborts(hass: HomeAssistant, broker: PlainMosquitto) -> None:
    entry = await node(hass, [glow_subentry(Connection.BROKER, broker.port)])
    result = await configure(hass, await start(hass, entry), broker_input(broker.port))
    result = await configure(
        hass, result, {CONF_DEVICE_ID: glow.DEVICE_ID.lower(), CONF_ROLE: "monitor"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_a_second_grid_meter_is_refused(hass: HomeAssistant, broker: PlainMosquitto) -> None:
    entry = await node(hass, [glow_subentry(Connection.BROKER, broker.port)])
    result = await configure(hass, await start(hass, entry), broker_input(broker.port))
    result = await configure(
        hass, result, {CONF_DEVICE_ID: glow.OTHER_DEVICE_ID, CONF_ROLE: "grid_meter"}
    )
    assert result["errors"] == {CONF_ROLE: "grid_meter_taken"}
    result = await configure(
        hass, result, {CONF_DEVICE_ID: glow.OTHER_DEVICE_ID, CONF_ROLE: "monitor"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_through_home_assistant_mqtt(
    hass: HomeAssistant, broker: PlainMosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Home Assistant's client batches subscriptions (a short cool-down): listen a little longer.
    monkeypatch.setattr(glow_flow, "DISCOVERY_SECONDS", 4.0)
    await set_up_ha_mqtt(hass, broker, tmp_path)
    await two_cads(broker.port)
    entry = await node(hass)

    result = await start(hass, entry)
    assert result["step_id"] == "user"  # the MQTT integration is there: which connection?
    result = await configure(hass, result, {CONF_CONNECTION: Connection.HOME_ASSISTANT.value})
    assert result["step_id"] == "device"
    assert result["description_placeholders"] == {"found": "2"}
    result = await configure(
        hass, result, {CONF_DEVICE_ID: glow.DEVICE_ID, CONF_ROLE: "grid_meter"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (added,) = glow_devices(entry)
    assert dict(added.data) == {
        CONF_CONNECTION: Connection.HOME_ASSISTANT.value,
        CONF_DEVICE_ID: glow.DEVICE_ID,
        CONF_ROLE: "grid_meter",
    }
    await hass.async_block_till_done()


async def test_with_home_assistant_mqtt_the_own_connection_can_still_be_chosen(
    hass: HomeAssistant, broker: PlainMosquitto, tmp_path: Path
) -> None:
    await set_up_ha_mqtt(hass, broker, tmp_path)
    entry = await node(hass)
    result = await configure(
        hass, await start(hass, entry), {CONF_CONNECTION: Connection.BROKER.value}
    )
    assert result["step_id"] == "broker"


async def test_reconfigure_changes_the_role(hass: HomeAssistant, broker: PlainMosquitto) -> None:
    modbus_grid_meter = ConfigSubentryData(
        data={CONF_ROLE: "grid_meter"},
        subentry_type=SUBENTRY_MODBUS_DEVICE,
        title="Grid meter",
        unique_id="not-started",
    )
    entry = node_entry(devices=[glow_subentry(Connection.BROKER, broker.port, role="monitor")])
    entry.add_to_hass(hass)  # not set up: the Modbus meter below is only a stored subentry
    (glow_id,) = entry.subentries
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_GLOW_MQTT),
        context={"source": "reconfigure", "subentry_id": glow_id},
    )
    assert result["step_id"] == "reconfigure"
    assert result["description_placeholders"] == {"device": f"Glow CAD {glow.DEVICE_ID}"}
    hass.config_entries.async_add_subentry(entry, _subentry(modbus_grid_meter))
    result = await configure(hass, result, {CONF_ROLE: "grid_meter"})
    assert result["errors"] == {CONF_ROLE: "grid_meter_taken"}

    hass.config_entries.async_remove_subentry(entry, _subentry_id(entry, "not-started"))
    result = await configure(hass, result, {CONF_ROLE: "grid_meter"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[glow_id].data[CONF_ROLE] == "grid_meter"
    assert entry.subentries[glow_id].data[CONF_DEVICE_ID] == glow.DEVICE_ID


def _subentry(data: ConfigSubentryData) -> Any:
    from homeassistant.config_entries import ConfigSubentry

    return ConfigSubentry(
        data=data["data"],
        subentry_type=data["subentry_type"],
        title=data["title"],
        unique_id=data["unique_id"],
    )


def _subentry_id(entry: MockConfigEntry, unique_id: str) -> str:
    return next(i for i, s in entry.subentries.items() if s.unique_id == unique_id)
