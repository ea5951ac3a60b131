"""The "Add smart meter (Glowmarkt cloud)" subentry flow against a local Glowmarkt API."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import SubentryFlowResult
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fractal_node.const import CONF_ROLE
from custom_components.fractal_node.glowmarkt import CONF_RESOURCES, SUBENTRY_GLOWMARKT
from tests.fractal_node.glowmarkt_helpers import api, glowmarkt_subentry
from tests.fractal_node.helpers import node_entry, setup_entry
from tests.support.glowmarkt_server import (
    EXPORT_ID,
    GAS_ID,
    IMPORT_ID,
    PASSWORD,
    USERNAME,
    GlowmarktServer,
)

__all__ = ["api"]  # the fixture
CREDENTIALS = {CONF_USERNAME: USERNAME, CONF_PASSWORD: PASSWORD}


async def start(hass: HomeAssistant, entry: MockConfigEntry) -> SubentryFlowResult:
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_GLOWMARKT), context={"source": "user"}
    )


async def configure(
    hass: HomeAssistant, result: SubentryFlowResult, user_input: Any
) -> SubentryFlowResult:
    return await hass.config_entries.subentries.async_configure(result["flow_id"], user_input)


async def start_reconfigure(hass: HomeAssistant, entry: MockConfigEntry) -> SubentryFlowResult:
    subentry_id = next(
        sid for sid, sub in entry.subentries.items() if sub.subentry_type == SUBENTRY_GLOWMARKT
    )
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_GLOWMARKT),
        context={"source": "reconfigure", "subentry_id": subentry_id},
    )


def default_of(result: SubentryFlowResult, key: str) -> Any:
    schema = result["data_schema"]
    assert schema is not None
    (marker,) = [m for m in schema.schema if str(m) == key]
    return marker.default()


async def test_adding_an_account_checks_the_password_and_offers_its_meters(
    hass: HomeAssistant, api: GlowmarktServer
) -> None:
    node = node_entry()
    await setup_entry(hass, node)

    result = await start(hass, node)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    result = await configure(
        hass, result, {CONF_USERNAME: f" {USERNAME} ", CONF_PASSWORD: PASSWORD}
    )
    assert result["step_id"] == "resources"
    # Every electricity and gas stream is offered (and chosen by default); costs are not.
    assert default_of(result, CONF_RESOURCES) == [IMPORT_ID, EXPORT_ID, GAS_ID]

    result = await configure(hass, result, {CONF_RESOURCES: [IMPORT_ID, EXPORT_ID]})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    (subentry,) = [s for s in node.subentries.values() if s.subentry_type == SUBENTRY_GLOWMARKT]
    assert subentry.unique_id == f"glowmarkt_{USERNAME}"
    assert subentry.data[CONF_USERNAME] == USERNAME
    assert subentry.data[CONF_PASSWORD] == PASSWORD
    assert subentry.data[CONF_ROLE] == "monitor"
    assert [r["classifier"] for r in subentry.data[CONF_RESOURCES]] == [
        "electricity.consumption",
        "electricity.export",
    ]
    await hass.config_entries.async_unload(node.entry_id)


async def test_a_refused_password_is_shown_and_can_be_corrected(
    hass: HomeAssistant, api: GlowmarktServer
) -> None:
    node = node_entry()
    await setup_entry(hass, node)
    result = await start(hass, node)

    result = await configure(hass, result, {CONF_USERNAME: USERNAME, CONF_PASSWORD: "wrong"})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await configure(hass, result, CREDENTIALS)

    assert result["step_id"] == "resources"


@pytest.mark.parametrize(
    ("status", "retry_after", "error"),
    [(500, None, "cannot_connect"), (429, "3600", "rate_limited")],
)
async def test_an_api_that_fails_is_shown_with_its_reason(
    hass: HomeAssistant, api: GlowmarktServer, status: int, retry_after: str | None, error: str
) -> None:
    node = node_entry()
    await setup_entry(hass, node)
    api.fail_next("virtualentity", status, retry_after=retry_after)

    result = await configure(hass, await start(hass, node), CREDENTIALS)

    assert result["errors"] == {"base": error}
    assert (result.get("description_placeholders") or {})["detail"]  # what went wrong, for the user


async def test_an_account_without_meter_readings_is_explained(
    hass: HomeAssistant, api: GlowmarktServer
) -> None:
    node = node_entry()
    await setup_entry(hass, node)
    api.dcc_verified = False

    result = await configure(hass, await start(hass, node), CREDENTIALS)

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_glowmarkt_meters"


async def test_choosing_nothing_is_refused(hass: HomeAssistant, api: GlowmarktServer) -> None:
    node = node_entry()
    await setup_entry(hass, node)
    result = await configure(hass, await start(hass, node), CREDENTIALS)

    result = await configure(hass, result, {CONF_RESOURCES: []})

    assert result["errors"] == {CONF_RESOURCES: "no_resources_chosen"}


async def test_the_same_account_twice_is_refused(hass: HomeAssistant, api: GlowmarktServer) -> None:
    node = node_entry(devices=[glowmarkt_subentry()])
    await setup_entry(hass, node)

    result = await configure(
        hass, await start(hass, node), {**CREDENTIALS, CONF_USERNAME: USERNAME.upper()}
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    await hass.config_entries.async_unload(node.entry_id)


async def test_reconfigure_takes_the_new_password_and_keeps_the_chosen_meters(
    hass: HomeAssistant, api: GlowmarktServer
) -> None:
    node = node_entry(devices=[glowmarkt_subentry(resources=[IMPORT_ID, GAS_ID])])
    await setup_entry(hass, node)
    api.password = "changed in the Bright app"

    result = await start_reconfigure(hass, node)
    assert result["step_id"] == "reconfigure"
    assert result["data_schema"] is not None
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description
    }
    assert suggested == {CONF_USERNAME: USERNAME}  # the password is never shown back
    result = await configure(hass, result, CREDENTIALS)  # the old one is refused now
    assert result["errors"] == {"base": "invalid_auth"}
    result = await configure(hass, result, {CONF_USERNAME: USERNAME, CONF_PASSWORD: api.password})
    assert default_of(result, CONF_RESOURCES) == [IMPORT_ID, GAS_ID]
    result = await configure(hass, result, {CONF_RESOURCES: [IMPORT_ID, GAS_ID]})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    (subentry,) = node.subentries.values()
    assert subentry.data[CONF_PASSWORD] == "changed in the Bright app"
    await hass.config_entries.async_unload(node.entry_id)


async def test_reconfigure_to_an_account_another_meter_reads_is_refused(
    hass: HomeAssistant, api: GlowmarktServer
) -> None:
    other = "neighbour@example.org"
    node = node_entry(devices=[glowmarkt_subentry(), glowmarkt_subentry(username=other)])
    await setup_entry(hass, node)

    result = await start_reconfigure(hass, node)  # the first one: USERNAME
    result = await configure(hass, result, {CONF_USERNAME: other, CONF_PASSWORD: PASSWORD})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    await hass.config_entries.async_unload(node.entry_id)


async def test_a_meter_without_the_recorder_says_why_it_imports_nothing(
    hass: HomeAssistant, api: GlowmarktServer
) -> None:
    node = node_entry(devices=[glowmarkt_subentry()])
    await setup_entry(hass, node)
    await hass.async_block_till_done(wait_background_tasks=True)

    (meter,) = node.runtime_data.meters.values()
    assert meter.problem is not None
    assert "recorder is not running" in meter.problem
    assert api.calls("readings") == []
    await hass.config_entries.async_unload(node.entry_id)
