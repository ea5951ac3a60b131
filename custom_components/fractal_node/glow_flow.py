"""The "Add smart meter (Glow)" flow: a config subentry per Glow CAD on local MQTT.

user (through Home Assistant's MQTT or the node's own broker connection; asked only when Home
Assistant's MQTT is set up) -> broker (tested: reachable, credentials accepted) -> device (CADs
heard on the broker in a few seconds, or an id typed in; the role) -> subentry.
reconfigure changes the role.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final

import voluptuous as vol
from homeassistant.components import mqtt
from homeassistant.config_entries import SubentryFlowResult
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT, CONF_USERNAME
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.util.ssl import client_context

from .const import CONF_ROLE
from .fractal.link_settings import valid_host
from .fractal.meters.broker import DEFAULT_MQTT_PORT, BrokerError, discover_devices, state_device
from .fractal.meters.glow import STATE_SUBSCRIPTION, GlowDevice
from .glow_mqtt import (
    CONF_CONNECTION,
    CONF_DEVICE_ID,
    CONF_TLS,
    Connection,
    broker_settings,
    glow_unique_id,
    ha_mqtt_available,
)
from .meter_flow import ROLE_SCHEMA, MeterSubentryFlow

# How long the flow listens for the CADs' STATE messages (a CAD sends one about every 10 s).
DISCOVERY_SECONDS: Final = 12.0
# A CAD's id is the hex MAC address in its topics; allow what a topic level can hold safely.
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

CONNECTION_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_CONNECTION, default=Connection.HOME_ASSISTANT.value): SelectSelector(
            SelectSelectorConfig(
                options=[c.value for c in Connection],
                translation_key=CONF_CONNECTION,
                mode=SelectSelectorMode.LIST,
            )
        )
    }
)
BROKER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_HOST): TextSelector(),
        vol.Required(CONF_PORT, default=DEFAULT_MQTT_PORT): vol.All(
            NumberSelector(
                NumberSelectorConfig(min=1, max=65535, step=1, mode=NumberSelectorMode.BOX)
            ),
            vol.Coerce(int),
        ),
        vol.Optional(CONF_USERNAME): TextSelector(),
        vol.Optional(CONF_PASSWORD): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        ),
        vol.Required(CONF_TLS, default=False): BooleanSelector(),
    }
)


class GlowMqttSubentryFlow(MeterSubentryFlow):
    """Add a Hildebrand Glow CAD publishing to a local MQTT broker."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._found: dict[str, GlowDevice] = {}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        if not ha_mqtt_available(self.hass):
            self._data[CONF_CONNECTION] = Connection.BROKER.value
            return await self.async_step_broker()
        if user_input is not None:
            self._data[CONF_CONNECTION] = user_input[CONF_CONNECTION]
            if user_input[CONF_CONNECTION] == Connection.BROKER:
                return await self.async_step_broker()
            self._found = await self._async_discover_through_ha()
            return await self.async_step_device()
        return self.async_show_form(step_id="user", data_schema=CONNECTION_SCHEMA)

    async def async_step_broker(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The broker the CAD publishes to; connected to (and listened on) before going on."""
        errors: dict[str, str] = {}
        placeholders = {"detail": ""}
        if user_input is not None:
            settings = {**user_input, CONF_HOST: user_input[CONF_HOST].strip()}
            if not valid_host(settings[CONF_HOST]):
                errors[CONF_HOST] = "invalid_host"
            else:
                try:
                    self._found = await _async_discover_on_broker(settings)
                except BrokerError as error:
                    errors["base"] = error.problem.value
                    placeholders["detail"] = error.detail
                else:
                    self._data.update(settings)
                    return await self.async_step_device()
        return self.async_show_form(
            step_id="broker",
            data_schema=self.add_suggested_values_to_schema(BROKER_SCHEMA, user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_device(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """A CAD heard on the broker, or its id typed in; and what it is to the node."""
        errors: dict[str, str] = {}
        if user_input is not None:
            device_id = user_input[CONF_DEVICE_ID].strip()
            if not _DEVICE_ID.match(device_id):
                errors[CONF_DEVICE_ID] = "invalid_device_id"
            elif self._configured(device_id):
                return self.async_abort(reason="already_configured")
            elif self._grid_meter_taken(user_input[CONF_ROLE]):
                errors[CONF_ROLE] = "grid_meter_taken"
            else:
                self._data[CONF_DEVICE_ID] = device_id
                self._data[CONF_ROLE] = user_input[CONF_ROLE]
                return self.async_create_entry(
                    title=f"Glow CAD {device_id}",
                    data=self._data,
                    unique_id=glow_unique_id(device_id),
                )
        return self.async_show_form(
            step_id="device",
            data_schema=self.add_suggested_values_to_schema(self._device_schema(), user_input),
            errors=errors,
            description_placeholders={"found": str(len(self._found))},
        )

    def _device_schema(self) -> vol.Schema:
        if self._found:
            options = [
                SelectOptionDict(value=device_id, label=_label(device))
                for device_id, device in sorted(self._found.items())
            ]
            selector: SelectSelector | TextSelector = SelectSelector(
                SelectSelectorConfig(
                    options=options, custom_value=True, mode=SelectSelectorMode.DROPDOWN
                )
            )
            id_field = vol.Required(CONF_DEVICE_ID, default=options[0]["value"])
        else:
            selector = TextSelector()
            id_field = vol.Required(CONF_DEVICE_ID)
        return vol.Schema({id_field: selector}).extend(ROLE_SCHEMA.schema)

    def _configured(self, device_id: str) -> bool:
        unique_id = glow_unique_id(device_id)
        return any(sub.unique_id == unique_id for sub in self._get_entry().subentries.values())

    async def _async_discover_through_ha(self) -> dict[str, GlowDevice]:
        found: dict[str, GlowDevice] = {}

        @callback
        def received(message: mqtt.ReceiveMessage) -> None:
            payload = message.payload
            raw = payload if isinstance(payload, bytes) else str(payload).encode()
            if (device := state_device(message.topic, raw)) is not None:
                found[device.device_id] = device

        await mqtt.async_wait_for_mqtt_client(self.hass)
        unsubscribe = await mqtt.async_subscribe(
            self.hass, STATE_SUBSCRIPTION, received, encoding=None
        )
        try:
            await asyncio.sleep(DISCOVERY_SECONDS)
        finally:
            unsubscribe()
        return found


async def _async_discover_on_broker(settings: dict[str, Any]) -> dict[str, GlowDevice]:
    broker = broker_settings(settings)
    return await discover_devices(
        broker, DISCOVERY_SECONDS, client_context() if broker.tls else None
    )


def _label(device: GlowDevice) -> str:
    details = ", ".join(part for part in (device.hardware, device.software) if part)
    return f"{device.device_id} ({details})" if details else device.device_id
