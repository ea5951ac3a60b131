"""Services (actions) of Fractal Node, registered once in ``async_setup``.

* ``get_descriptor``: the node descriptor the node publishes.
* ``override``: the householder's override of one device (mode, value, duration) as the
  executor's highest plan, until it ends by itself; bad input is refused with every reason.
* ``replan``: asks the aggregator for a new plan (``reported.replan_requested`` in the node's
  classic shadow).
"""

from __future__ import annotations

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util

from .const import (
    ATTR_CONFIG_ENTRY_ID,
    ATTR_DURATION,
    ATTR_MODE,
    ATTR_VALUE,
    DOMAIN,
    SERVICE_GET_DESCRIPTOR,
    SERVICE_OVERRIDE,
    SERVICE_REPLAN,
)
from .coordinator import FractalNodeConfigEntry
from .fractal.executor import override_plan
from .fractal.protocol import to_jsonable

GET_DESCRIPTOR_SCHEMA = vol.Schema({vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string})
REPLAN_SCHEMA = GET_DESCRIPTOR_SCHEMA
OVERRIDE_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_DEVICE_ID): cv.string,
        vol.Required(ATTR_MODE): cv.string,
        vol.Optional(ATTR_VALUE): vol.Coerce(float),
        vol.Required(ATTR_DURATION): cv.positive_time_period,
    }
)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_DESCRIPTOR,
        _async_get_descriptor,
        schema=GET_DESCRIPTOR_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(DOMAIN, SERVICE_OVERRIDE, _async_override, schema=OVERRIDE_SCHEMA)
    hass.services.async_register(DOMAIN, SERVICE_REPLAN, _async_replan, schema=REPLAN_SCHEMA)


async def _async_get_descriptor(call: ServiceCall) -> ServiceResponse:
    """The node descriptor document (``fractal.node.v1``) the node publishes."""
    entry = _loaded_entry(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    return to_jsonable(entry.runtime_data.runtime.descriptor())


async def _async_override(call: ServiceCall) -> None:
    """Run one device in a mode until the duration ends; outranks every plan, never the
    envelope."""
    entry, device_id = _entry_and_device(call.hass, call.data[ATTR_DEVICE_ID])
    executor = entry.runtime_data.executor
    assert executor is not None  # a loaded entry runs its executor
    now = dt_util.utcnow()
    plan, problems = override_plan(
        executor.envelope,
        device_id,
        call.data[ATTR_MODE],
        _whole(call.data.get(ATTR_VALUE)),
        now=now,
        until=now + call.data[ATTR_DURATION],
    )
    if plan is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_override",
            translation_placeholders={"problems": "; ".join(str(p) for p in problems)},
        )
    executor.overrides[device_id] = plan  # replaces this device's earlier override
    await executor.async_tick(now)  # at once, not at the next tick


def _whole(value: float | None) -> float | int | None:
    """Powers in W are whole numbers in the protocol: 2500.0 from a form is 2500."""
    return int(value) if value is not None and value.is_integer() else value


async def _async_replan(call: ServiceCall) -> None:
    """Ask the aggregator for a new plan (delivered once the link is connected)."""
    entry = _loaded_entry(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    node_link = entry.runtime_data.link
    if node_link is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_linked",
            translation_placeholders={"name": entry.title},
        )
    node_link.link.request_replan(dt_util.utcnow())


def _entry_and_device(hass: HomeAssistant, device_id: str) -> tuple[FractalNodeConfigEntry, str]:
    """The loaded node and the node's id of a Home Assistant device (a Modbus device of it)."""
    device = dr.async_get(hass).async_get(device_id)
    subentry_ids = [key for domain, key in device.identifiers if domain == DOMAIN] if device else []
    for entry_id in device.config_entries if device else ():
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN:
            continue
        for subentry_id in subentry_ids:
            if subentry_id in entry.subentries:
                return _loaded_entry(hass, entry_id), subentry_id
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="device_not_found",
        translation_placeholders={"device_id": device_id},
    )


def _loaded_entry(hass: HomeAssistant, entry_id: str) -> FractalNodeConfigEntry:
    entry: FractalNodeConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"name": entry.title},
        )
    return entry
