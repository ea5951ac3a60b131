"""A running Forecast.Solar as the PV forecast: its sensors carry no periods, so the node
reads the forecast the way the Energy dashboard does, through Home Assistant's forecast_solar
energy platform (needs the forecast-solar library the integration requires)."""

from __future__ import annotations

from forecast_solar.models import Estimate
from homeassistant.components.forecast_solar.coordinator import ForecastSolarDataUpdateCoordinator
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fractal_node.const import CONF_PLANNING, CONF_PV_FORECAST
from custom_components.fractal_node.standalone import InputReader
from tests.fractal_node.test_planning_options import GOOD, home, inputs, submit

__all__ = ["inputs"]  # the autouse fixture: the other picked entities


def forecast_solar_estimate() -> Estimate:
    """What the Forecast.Solar API answers (the shape of its documented example), read by
    the forecast-solar library Home Assistant's integration uses."""
    return Estimate.from_dict(
        {
            "result": {
                "watts": {"2026-01-15T09:00:00+00:00": 500, "2026-01-15T10:00:00+00:00": 1500},
                "watt_hours_period": {
                    "2026-01-15T09:00:00+00:00": 800,
                    "2026-01-15T10:00:00+00:00": 1700,
                },
                "watt_hours_day": {"2026-01-15T00:00:00+00:00": 2500},
            },
            "message": {"ratelimit": {"limit": 12}, "info": {"timezone": "UTC"}},
        }
    )


async def test_a_running_forecast_solar_is_read_through_its_energy_platform(
    hass: HomeAssistant, entity_registry: er.EntityRegistry
) -> None:
    """Forecast.Solar's sensors carry no periods; the node reads its forecast the way the
    Energy dashboard does (Home Assistant's forecast_solar energy platform)."""
    solar = MockConfigEntry(
        domain="forecast_solar",
        title="Roof",
        data={"latitude": 52.2, "longitude": 0.12},
        options={"declination": 35, "azimuth": 180, "modules_power": 4000},
    )
    solar.add_to_hass(hass)
    solar.mock_state(hass, ConfigEntryState.LOADED)
    coordinator = ForecastSolarDataUpdateCoordinator(hass, solar)
    coordinator.async_set_updated_data(forecast_solar_estimate())  # as its hourly refresh does
    solar.runtime_data = coordinator
    registered = entity_registry.async_get_or_create(
        "sensor", "forecast_solar", "roof_energy_production_today", config_entry=solar
    )
    hass.states.async_set(registered.entity_id, "2.5", {"unit_of_measurement": "kWh"})
    planning = GOOD | {CONF_PV_FORECAST: [registered.entity_id]}

    problems: list[str] = []
    periods = await InputReader(hass, planning).async_pv_forecast(problems)
    assert problems == []
    assert [(p.start.hour, p.end.hour, p.value) for p in periods] == [(9, 10, 0.8), (10, 11, 1.7)]
    entry = home(hass)
    result = await submit(hass, entry, planning)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_PLANNING][CONF_PV_FORECAST] == [registered.entity_id]
