"""The get_descriptor action: the node descriptor document, or a clear error."""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fractal_node.const import DOMAIN
from custom_components.fractal_node.fractal import __version__
from custom_components.fractal_node.fractal.protocol import NodeDescriptor, parse
from tests.fractal_node.helpers import NAME, NODE_ID, node_entry, setup_entry


async def get_descriptor(hass: HomeAssistant, entry_id: str) -> dict[str, object] | None:
    return await hass.services.async_call(
        DOMAIN,
        "get_descriptor",
        {"config_entry_id": entry_id},
        blocking=True,
        return_response=True,
    )


async def test_returns_the_node_descriptor(hass: HomeAssistant) -> None:
    entry = node_entry()
    await setup_entry(hass, entry)
    response = await get_descriptor(hass, entry.entry_id)
    assert response == {
        "schema": "fractal.node.v1",
        "node": NODE_ID,
        "name": NAME,
        "tags": {"street": "Elm Road", "feeder": "F12"},
        "software": __version__,
        "link": "standalone",
        "devices": [],
        "envelope": {},
    }
    assert parse(NodeDescriptor, response).ok  # a valid protocol document


async def test_unknown_entry_is_a_clear_error(hass: HomeAssistant) -> None:
    await setup_entry(hass, node_entry())
    with pytest.raises(ServiceValidationError) as raised:
        await get_descriptor(hass, "no-such-entry")
    assert raised.value.translation_key == "entry_not_found"
    assert raised.value.translation_placeholders == {"entry_id": "no-such-entry"}


async def test_another_integrations_entry_is_not_a_node(hass: HomeAssistant) -> None:
    await setup_entry(hass, node_entry())
    other = MockConfigEntry(domain="sun")
    other.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as raised:
        await get_descriptor(hass, other.entry_id)
    assert raised.value.translation_key == "entry_not_found"


async def test_an_unloaded_node_is_a_clear_error(hass: HomeAssistant) -> None:
    entry = node_entry()
    await setup_entry(hass, entry)
    assert await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(ServiceValidationError) as raised:
        await get_descriptor(hass, entry.entry_id)
    assert raised.value.translation_key == "entry_not_loaded"
    assert raised.value.translation_placeholders == {"name": NAME}


async def test_the_response_is_required(hass: HomeAssistant) -> None:
    entry = node_entry()
    await setup_entry(hass, entry)
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN, "get_descriptor", {"config_entry_id": entry.entry_id}, blocking=True
        )
