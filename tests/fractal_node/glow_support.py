"""Helpers of the Glow CAD tests in Home Assistant: subentries as the flow makes them, and Home
Assistant's MQTT integration against a test broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fractal_node.const import CONF_ROLE
from custom_components.fractal_node.glow_mqtt import (
    CONF_CONNECTION,
    CONF_DEVICE_ID,
    CONF_TLS,
    SUBENTRY_GLOW_MQTT,
    Connection,
)
from tests.fractal_node.helpers import until
from tests.support import glow_messages as glow
from tests.support.plain_mosquitto import PlainMosquitto


def glow_subentry(
    connection: Connection,
    port: int = 1883,
    role: str = "grid_meter",
    device_id: str = glow.DEVICE_ID,
) -> ConfigSubentryData:
    data: dict[str, Any] = {
        CONF_CONNECTION: connection.value,
        CONF_DEVICE_ID: device_id,
        CONF_ROLE: role,
    }
    if connection is Connection.BROKER:
        data |= {CONF_HOST: "127.0.0.1", CONF_PORT: port, CONF_TLS: False}
    return ConfigSubentryData(
        data=data,
        subentry_type=SUBENTRY_GLOW_MQTT,
        title=f"Glow CAD {device_id}",
        unique_id=f"glow_{device_id}",
    )


async def set_up_ha_mqtt(hass: HomeAssistant, broker: PlainMosquitto, config_dir: Path) -> None:
    """Home Assistant's MQTT integration, connected to the test broker."""
    # MQTT reads its YAML from configuration.yaml, which the harness's config dir lacks.
    (config_dir / "configuration.yaml").write_text("")
    hass.config.config_dir = str(config_dir)
    entry = MockConfigEntry(domain="mqtt", data={"broker": "127.0.0.1", "port": broker.port})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await until(lambda: mqtt.is_connected(hass))
