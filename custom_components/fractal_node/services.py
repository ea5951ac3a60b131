"""Services (actions) of Fractal Node, registered once in ``async_setup``."""

from __future__ import annotations

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv

from .const import ATTR_CONFIG_ENTRY_ID, DOMAIN, SERVICE_GET_DESCRIPTOR
from .coordinator import FractalNodeConfigEntry
from .fractal.protocol import to_jsonable

GET_DESCRIPTOR_SCHEMA = vol.Schema({vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string})


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_DESCRIPTOR,
        _async_get_descriptor,
        schema=GET_DESCRIPTOR_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )


async def _async_get_descriptor(call: ServiceCall) -> ServiceResponse:
    """The node descriptor document (``fractal.node.v1``) the node publishes."""
    entry = _loaded_entry(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    return to_jsonable(entry.runtime_data.runtime.descriptor())


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
