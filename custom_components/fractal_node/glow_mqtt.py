"""A Hildebrand Glow CAD over local MQTT as a smart meter of the node.

The CAD publishes to the householder's broker. When Home Assistant's MQTT integration is set
up the installer may choose to subscribe through it; otherwise the node connects to the broker
given in the flow (aiomqtt). Either way each message goes through the glitch filter of the
meter's `MeterSource`; an unreadable message is logged once (then at debug level) and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Final

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, CONF_USERNAME
from homeassistant.core import HomeAssistant, callback
from homeassistant.util.ssl import client_context

from .fractal.meters import Quantity
from .fractal.meters.broker import BrokerError, BrokerSettings, listen
from .fractal.meters.glow import GlowMessageError, parse_message, topics
from .meter_entities import MeterSource

_LOGGER = logging.getLogger(__name__)

SUBENTRY_GLOW_MQTT: Final = "glow_mqtt"
CONF_CONNECTION: Final = "connection"
CONF_DEVICE_ID: Final = "device_id"
CONF_TLS: Final = "tls"
MQTT_DOMAIN: Final = "mqtt"
# The CAD reports electricity, gas (when paired with a gas meter) and its HAN link.
GLOW_QUANTITIES: Final = frozenset(Quantity)
PROBLEM_NO_HA_MQTT: Final = "Home Assistant's MQTT integration is not set up"


class Connection(StrEnum):
    HOME_ASSISTANT = "home_assistant"  # through Home Assistant's MQTT integration
    BROKER = "broker"  # the node's own connection to the broker


def broker_settings(data: Mapping[str, Any]) -> BrokerSettings:
    return BrokerSettings(
        host=data[CONF_HOST],
        port=int(data[CONF_PORT]),
        username=data.get(CONF_USERNAME) or None,
        password=data.get(CONF_PASSWORD) or None,
        tls=bool(data.get(CONF_TLS, False)),
    )


def ha_mqtt_available(hass: HomeAssistant) -> bool:
    """Home Assistant's MQTT integration is set up (its client may still be connecting)."""
    return bool(hass.config_entries.async_loaded_entries(MQTT_DOMAIN))


def glow_unique_id(device_id: str) -> str:
    return f"glow_{device_id.upper()}"


async def async_start_glow_mqtt(
    hass: HomeAssistant, entry: ConfigEntry, subentry: ConfigSubentry
) -> MeterSource:
    """The CAD's meter, subscribed through Home Assistant's MQTT or the node's own client."""
    source = MeterSource(
        hass,
        entry,
        subentry,
        quantities=GLOW_QUANTITIES,
        manufacturer="Hildebrand",
        model="Glow CAD (local MQTT)",
    )
    device_id = str(subentry.data[CONF_DEVICE_ID])
    on_message = _message_handler(source, device_id)
    subscription = topics(device_id)
    if subentry.data[CONF_CONNECTION] == Connection.HOME_ASSISTANT:
        await _async_subscribe_through_ha(hass, entry, source, subscription, on_message)
        return source
    settings = broker_settings(subentry.data)

    @callback
    def on_problem(error: BrokerError | None) -> None:
        source.async_set_problem(None if error is None else str(error))

    entry.async_create_background_task(
        hass,
        listen(
            settings,
            subscription,
            on_message,
            on_problem,
            client_context() if settings.tls else None,
        ),
        name=f"glow mqtt {device_id}",
    )
    return source


async def _async_subscribe_through_ha(
    hass: HomeAssistant,
    entry: ConfigEntry,
    source: MeterSource,
    subscription: str,
    on_message: Callable[[str, bytes], None],
) -> None:
    # A node whose MQTT integration was removed keeps running; the meter stays silent and the
    # repair issue says why.
    if not ha_mqtt_available(hass) or not await mqtt.async_wait_for_mqtt_client(hass):
        source.async_set_problem(PROBLEM_NO_HA_MQTT)
        _LOGGER.warning("%s: %s", source.subentry.title, PROBLEM_NO_HA_MQTT)
        return

    @callback
    def received(message: mqtt.ReceiveMessage) -> None:
        payload = message.payload
        on_message(message.topic, payload if isinstance(payload, bytes) else str(payload).encode())

    entry.async_on_unload(
        await mqtt.async_subscribe(hass, subscription, received, qos=0, encoding=None)
    )


def _message_handler(source: MeterSource, device_id: str) -> Callable[[str, bytes], None]:
    logged = False

    @callback
    def on_message(topic: str, payload: bytes) -> None:
        nonlocal logged
        try:
            parsed = parse_message(topic, payload)
        except GlowMessageError as error:
            # Once while the CAD keeps sending them, so the log is not flooded every 10 s.
            log = _LOGGER.debug if logged else _LOGGER.warning
            log("%s: dropped an unreadable message on %s: %s", source.subentry.title, topic, error)
            logged = True
            return
        if parsed is None or parsed.device_id.upper() != device_id.upper():
            return
        source.async_push(parsed.reading)

    return on_message
