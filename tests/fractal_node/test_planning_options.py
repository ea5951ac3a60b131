"""The options flow's "Standalone planning" section: the entities the node plans with, checked
before they are saved; every problem is shown and nothing is lost."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType, section
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fractal_node.const import (
    CONF_BATTERY_CAPACITY,
    CONF_EXPORT_RATE,
    CONF_IMPORT_RATE,
    CONF_LOAD,
    CONF_PLANNING,
    CONF_PV_FORECAST,
    CONF_TAGS,
)
from tests.fractal_node.helpers import TAGS, node_entry

RATES = "event.octopus_energy_electricity_22l1234_1900000000001_current_day_rates"
EXPORT = "sensor.octopus_export_rate"
SOLCAST = "sensor.solcast_pv_forecast_forecast_today"
LOAD = "sensor.house_load"
GOOD = {
    CONF_IMPORT_RATE: [RATES],
    CONF_EXPORT_RATE: [EXPORT],
    CONF_PV_FORECAST: [SOLCAST],
    CONF_LOAD: LOAD,
    CONF_BATTERY_CAPACITY: 9.5,
}
BATTERY = ConfigSubentryData(
    data={
        "transport": "tcp",
        "host": "192.0.2.10",
        "port": 502,
        "unit": 3,
        "model": "generic_battery",
        "role": "battery",
        "limits": {"max_charge_w": 3000, "max_discharge_w": 2500, "soc_min": 10, "soc_max": 95},
    },
    subentry_type="modbus_device",
    title="generic_battery 3",
    unique_id="192.0.2.10:502/3",
)


@pytest.fixture(autouse=True)
def inputs(hass: HomeAssistant) -> None:
    """Entities shaped like the Octopus Energy integration's and Solcast's."""
    rate = {"start": "2026-01-15T16:00:00+00:00", "end": "2026-01-15T16:30:00+00:00"}
    hass.states.async_set(
        RATES, "2026-01-15T00:00:00+00:00", {"rates": [rate | {"value_inc_vat": 0.2}]}
    )
    hass.states.async_set(EXPORT, "0.15", {"unit_of_measurement": "GBP/kWh"})
    forecast = [{"period_start": "2026-01-15T12:00:00+00:00", "pv_estimate": 1.2}]
    hass.states.async_set(SOLCAST, "3.1", {"detailedForecast": forecast})
    hass.states.async_set(LOAD, "650", {"unit_of_measurement": "W", "device_class": "power"})


def home(hass: HomeAssistant, devices: list[ConfigSubentryData] | None = None) -> MockConfigEntry:
    """A node with a battery, not started (the flow reads only its devices' roles)."""
    entry = node_entry(devices=[BATTERY] if devices is None else devices)
    entry.add_to_hass(hass)
    return entry


async def submit(
    hass: HomeAssistant, entry: MockConfigEntry, planning: dict[str, Any]
) -> FlowResult:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TAGS: "street=Elm Road", CONF_PLANNING: planning}
    )


def planning_suggestions(result: FlowResult) -> dict[str, Any]:
    """What the form's planning section shows pre-filled."""
    for key, value in result["data_schema"].schema.items():
        if key == CONF_PLANNING:
            assert isinstance(value, section)
            assert value.options["collapsed"] is True
            return {
                str(field): field.description["suggested_value"]
                for field in value.schema.schema
                if field.description and "suggested_value" in field.description
            }
    raise AssertionError("no planning section")


async def test_the_entities_are_saved_and_shown_again(hass: HomeAssistant) -> None:
    entry = home(hass)
    result = await submit(hass, entry, GOOD | {CONF_EXPORT_RATE: []})  # an emptied field
    assert result["type"] is FlowResultType.CREATE_ENTRY
    saved = {key: value for key, value in GOOD.items() if key != CONF_EXPORT_RATE}
    assert entry.options == {CONF_TAGS: {"street": "Elm Road"}, CONF_PLANNING: saved}

    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert planning_suggestions(result) == saved


async def test_an_empty_section_stops_planning(hass: HomeAssistant) -> None:
    entry = home(hass)
    hass.config_entries.async_update_entry(entry, options={CONF_TAGS: TAGS, CONF_PLANNING: GOOD})
    result = await submit(hass, entry, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {CONF_TAGS: {"street": "Elm Road"}}


async def test_a_forecast_solar_entity_without_its_integration_running_is_refused(
    hass: HomeAssistant, entity_registry: er.EntityRegistry
) -> None:
    """Forecast.Solar's sensors carry no periods: its energy platform has them, and without
    the integration running there is nothing to read (the running one:
    test_planning_forecast_solar.py)."""
    solar = MockConfigEntry(domain="forecast_solar", title="Roof")
    solar.add_to_hass(hass)
    registered = entity_registry.async_get_or_create(
        "sensor", "forecast_solar", "roof_energy_production_today", config_entry=solar
    )
    hass.states.async_set(registered.entity_id, "12.3", {"unit_of_measurement": "kWh"})
    result = await submit(hass, home(hass), GOOD | {CONF_PV_FORECAST: [registered.entity_id]})
    assert result["errors"] == {"base": "unusable_planning_input"}
    problems = result["description_placeholders"]["planning_problems"]
    assert problems == (
        f"{registered.entity_id}: its integration (forecast_solar) is not running: no forecast"
    )


@pytest.mark.parametrize(
    ("planning", "problem"),
    [
        ({CONF_EXPORT_RATE: [EXPORT]}, "an import rate is needed to plan"),
        (
            {k: v for k, v in GOOD.items() if k != CONF_BATTERY_CAPACITY},
            "the battery's capacity is needed",
        ),
        (GOOD | {CONF_IMPORT_RATE: ["sensor.nowhere"]}, "sensor.nowhere: no such entity"),
        (GOOD | {CONF_IMPORT_RATE: [LOAD]}, f"{LOAD}: unknown rate unit 'W'"),
        (GOOD | {CONF_EXPORT_RATE: [SOLCAST]}, f"{SOLCAST}: a flat rate needs a unit"),
        (GOOD | {CONF_PV_FORECAST: [EXPORT]}, f"{EXPORT}: no forecast periods"),
    ],
)
async def test_unusable_entities_are_refused_and_nothing_is_lost(
    hass: HomeAssistant, planning: dict[str, Any], problem: str
) -> None:
    entry = home(hass)
    result = await submit(hass, entry, planning)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unusable_planning_input"}
    assert problem in result["description_placeholders"]["planning_problems"]
    assert entry.options == {CONF_TAGS: TAGS}
    # Submitted again as it was shown: the same answer, still nothing saved.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TAGS: "street=Elm Road", CONF_PLANNING: planning}
    )
    assert result["errors"] == {"base": "unusable_planning_input"}


async def test_a_node_without_a_battery_has_nothing_to_plan(hass: HomeAssistant) -> None:
    result = await submit(hass, home(hass, devices=[]), GOOD)
    assert result["errors"] == {"base": "unusable_planning_input"}
    assert result["description_placeholders"]["planning_problems"] == (
        "add the battery (Add device) before planning"
    )


async def test_bad_tags_and_bad_planning_are_both_shown(hass: HomeAssistant) -> None:
    entry = home(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TAGS: "no-dashes=1", CONF_PLANNING: {CONF_LOAD: LOAD}}
    )
    assert result["errors"] == {CONF_TAGS: "invalid_tags", "base": "unusable_planning_input"}
    assert result["description_placeholders"]["planning_problems"] == (
        "an import rate is needed to plan"
    )
