"""Start the node's smart meters: each meter subentry type has a starter that builds its
`MeterSource` and connects its transport (stopped on unload).

A new meter kind adds its subentry type and starter to `METER_STARTERS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant

from .glow_mqtt import SUBENTRY_GLOW_MQTT, async_start_glow_mqtt
from .glowmarkt import SUBENTRY_GLOWMARKT, async_start_glowmarkt
from .meter_entities import MeterSource
from .zigbee_meter import SUBENTRY_ZIGBEE_METER, async_start_zigbee_meter

type MeterStarter = Callable[[HomeAssistant, ConfigEntry, ConfigSubentry], Awaitable[MeterSource]]

METER_STARTERS: dict[str, MeterStarter] = {
    SUBENTRY_GLOW_MQTT: async_start_glow_mqtt,
    SUBENTRY_GLOWMARKT: async_start_glowmarkt,
    SUBENTRY_ZIGBEE_METER: async_start_zigbee_meter,
}


async def async_start_meters(hass: HomeAssistant, entry: ConfigEntry) -> dict[str, MeterSource]:
    """Every meter subentry's source, started and watched for silence, by subentry id."""
    meters: dict[str, MeterSource] = {}
    for subentry_id, subentry in entry.subentries.items():
        starter = METER_STARTERS.get(subentry.subentry_type)
        if starter is None:
            continue
        source = await starter(hass, entry, subentry)
        entry.async_on_unload(source.async_start())
        meters[subentry_id] = source
    return meters
