"""Each blueprint as an automation in a real Home Assistant (the test harness): instantiated
with test entities, triggered by state and clock changes, and judged by the actions it ran.

`fractal_node.override` is registered here with the integration's own schema, so every call a
blueprint makes is one the real action accepts (test_blueprints_on_a_real_node.py runs them
against a real node); notify actions are recorded as a phone's would be received.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from tests.blueprints.blueprint_support import (
    automation_from,
    capture_notifications,
    capture_overrides,
    move_to,
    set_state,
)

LONDON = dt_util.get_time_zone("Europe/London")
CHARGER = "charger-device-id"


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A moment in November 2026 (GMT, so London time is UTC)."""
    return datetime(2026, 11, day, hour, minute, second, tzinfo=LONDON)


# --- Charge the car for my departure ------------------------------------------------------


async def test_the_car_charges_in_cheap_half_hours_and_straight_through_at_the_end(
    blueprint_hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    hass = blueprint_hass
    await move_to(hass, freezer, at(23, 19, 0, 5))
    overrides = capture_overrides(hass)
    await set_state(hass, "sensor.unit_rate", 28.1, unit_of_measurement="GBP/kWh")
    await automation_from(
        hass,
        "charge_car_for_departure",
        ev_charger=CHARGER,
        signal_sensor="sensor.unit_rate",
        departure_time="07:30:00",
        hours_needed=3,
        threshold=15,
        look_ahead=12,
    )

    await move_to(hass, freezer, at(23, 19, 30))  # 12 h before departure, but dear
    await move_to(hass, freezer, at(23, 20, 0))
    assert overrides == []

    await move_to(hass, freezer, at(23, 23, 10))
    await set_state(hass, "sensor.unit_rate", 12.5)  # the rate drops: charge at once
    await move_to(hass, freezer, at(23, 23, 30))  # still cheap: the next half-hour too
    await set_state(hass, "sensor.unit_rate", 30)
    await move_to(hass, freezer, at(24, 0, 0))  # dear again: nothing

    assert [(c.data["device_id"], c.data["mode"], c.data["value"]) for c in overrides] == [
        (CHARGER, "ev_current", 16.0),
        (CHARGER, "ev_current", 16.0),
    ]
    assert [c.data["duration"] for c in overrides] == [timedelta(minutes=31)] * 2

    await move_to(hass, freezer, at(24, 4, 30))  # 3 h left: charge to departure, dear or not
    assert overrides[-1].data["duration"] == timedelta(hours=3)
    assert len(overrides) == 3

    await move_to(hass, freezer, at(24, 8, 0))  # gone; tomorrow's departure is 23.5 h away
    await set_state(hass, "sensor.unit_rate", 5)
    assert len(overrides) == 3


async def test_the_car_charges_on_a_carbon_signal_and_an_unknown_signal_is_not_cheap(
    blueprint_hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    hass = blueprint_hass
    await move_to(hass, freezer, at(23, 1, 0, 5))
    overrides = capture_overrides(hass)
    await set_state(hass, "sensor.carbon_intensity", "unavailable")
    await automation_from(
        hass,
        "charge_car_for_departure",
        ev_charger=CHARGER,
        signal_sensor="sensor.carbon_intensity",
        departure_time="06:00:00",
        hours_needed=1,
        threshold=120,
        charge_current=10,
    )

    await move_to(hass, freezer, at(23, 1, 30))
    assert overrides == []
    await set_state(hass, "sensor.carbon_intensity", 95)

    (call,) = overrides
    assert (call.data["value"], call.data["duration"]) == (10.0, timedelta(minutes=31))


# --- Surplus to hot water ----------------------------------------------------------------


async def test_exported_sunshine_boosts_the_immersion_while_it_lasts(
    blueprint_hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    hass = blueprint_hass
    await move_to(hass, freezer, at(23, 12, 1))
    overrides = capture_overrides(hass)
    await set_state(hass, "sensor.export_power", 200, unit_of_measurement="W")
    await automation_from(
        hass,
        "surplus_to_hot_water",
        immersion="immersion-device-id",
        export_sensor="sensor.export_power",
    )

    await set_state(hass, "sensor.export_power", 3400)
    await move_to(hass, freezer, at(23, 12, 5))  # not yet five minutes
    assert overrides == []
    await move_to(hass, freezer, at(23, 12, 6, 1))  # five minutes of surplus: boost
    await set_state(hass, "sensor.export_power", 400)  # the heater takes most of it
    await move_to(hass, freezer, at(23, 12, 10))  # still exporting: renewed
    await set_state(hass, "sensor.export_power", 0)  # a cloud: importing
    await move_to(hass, freezer, at(23, 12, 15))  # not renewed
    await set_state(hass, "sensor.export_power", 300)
    await move_to(hass, freezer, at(23, 12, 20))  # the boost ran out: no renewal

    assert [(c.data["device_id"], c.data["mode"], c.data["duration"]) for c in overrides] == [
        ("immersion-device-id", "on", timedelta(minutes=10)),
        ("immersion-device-id", "on", timedelta(minutes=10)),
    ]


async def test_a_hot_tank_is_not_boosted(
    blueprint_hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    hass = blueprint_hass
    await move_to(hass, freezer, at(23, 12, 1))
    overrides = capture_overrides(hass)
    await set_state(hass, "sensor.export_power", 0, unit_of_measurement="W")
    await set_state(hass, "sensor.tank", 66, unit_of_measurement="°C")
    await automation_from(
        hass,
        "surplus_to_hot_water",
        immersion="immersion-device-id",
        export_sensor="sensor.export_power",
        tank_temperature="sensor.tank",
        start_after={"minutes": 1},
    )

    await set_state(hass, "sensor.export_power", 3500)
    await move_to(hass, freezer, at(23, 12, 2, 1))
    assert overrides == []

    await set_state(hass, "sensor.tank", 48)
    await set_state(hass, "sensor.export_power", 3000)
    await set_state(hass, "sensor.export_power", 3600)  # surplus again, for a minute
    await move_to(hass, freezer, at(23, 12, 3, 2))
    assert len(overrides) == 1


# --- Low-carbon window -------------------------------------------------------------------


async def test_a_low_carbon_window_is_announced(
    blueprint_hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    hass = blueprint_hass
    phone = capture_notifications(hass, "mobile_app_phone")
    await set_state(hass, "sensor.carbon_intensity", 180, unit_of_measurement="gCO2/kWh")
    await automation_from(
        hass,
        "low_carbon_window",
        carbon_sensor="sensor.carbon_intensity",
        threshold=100,
        notify_action="notify.mobile_app_phone",
    )

    await set_state(hass, "sensor.carbon_intensity", 110)
    await set_state(hass, "sensor.carbon_intensity", 92)
    await set_state(hass, "sensor.carbon_intensity", 85)  # still low: no second message
    await set_state(hass, "sensor.carbon_intensity", 150)  # over: not asked to be told

    (call,) = phone
    assert call.data["title"] == "Low-carbon power now"
    assert "92 gCO₂/kWh, below your 100" in call.data["message"]


async def test_the_end_of_a_low_carbon_window_when_asked_and_short_dips_ignored(
    blueprint_hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    hass = blueprint_hass
    await move_to(hass, freezer, at(23, 9, 0))
    phone = capture_notifications(hass)
    await set_state(hass, "sensor.carbon_intensity", 180)
    await automation_from(
        hass,
        "low_carbon_window",
        carbon_sensor="sensor.carbon_intensity",
        lasting={"minutes": 30},
        tell_me_when_over=True,
    )

    await set_state(hass, "sensor.carbon_intensity", 90)
    await move_to(hass, freezer, at(23, 9, 20))
    await set_state(hass, "sensor.carbon_intensity", 130)  # a 20-minute dip: no window
    assert [c.data["title"] for c in phone] == ["Low-carbon window over"]  # told it is over
    await set_state(hass, "sensor.carbon_intensity", 60)
    await move_to(hass, freezer, at(23, 9, 50, 1))
    await set_state(hass, "sensor.carbon_intensity", 140)

    assert [c.data["title"] for c in phone] == [
        "Low-carbon window over",
        "Low-carbon power now",
        "Low-carbon window over",
    ]
    assert phone[-1].data["message"] == "The grid is back at 140 gCO₂/kWh."


# --- Hydro guardian ----------------------------------------------------------------------


async def test_the_river_level_against_the_licence_band(
    blueprint_hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    hass = blueprint_hass
    await move_to(hass, freezer, at(23, 6, 0, 10))
    operators = capture_notifications(hass, "operators")
    level = "sensor.hydro_river_level_upstream"
    await set_state(hass, level, 1.3, unit_of_measurement="m")
    await automation_from(
        hass,
        "hydro_guardian",
        level_sensor=level,
        band_min=1.0,
        band_max=1.5,
        margin=0.05,
        notify_action="notify.operators",
    )

    for value in (1.25, 1.04, 1.02, 0.98, 1.03, 1.2, 1.47, 1.52, 1.49, 1.3):
        await set_state(hass, level, value, unit_of_measurement="m")

    assert [(c.data["title"], c.data["message"].split(";")[0]) for c in operators] == [
        ("River level near the bottom of the licence band", "River level 1.04 m"),
        ("River level BELOW the licence band", "River level 0.98 m"),
        ("River level near the bottom of the licence band", "River level 1.03 m"),
        ("River level back inside the licence band", "River level 1.2 m"),
        ("River level near the top of the licence band", "River level 1.47 m"),
        ("River level ABOVE the licence band", "River level 1.52 m"),
        ("River level near the top of the licence band", "River level 1.49 m"),
        ("River level back inside the licence band", "River level 1.3 m"),
    ]
    assert operators[0].data["message"].endswith("licence band 1.0 to 1.5 m.")


async def test_a_silent_data_link_is_reported(
    blueprint_hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    hass = blueprint_hass
    await move_to(hass, freezer, at(23, 6, 0, 10))
    operators = capture_notifications(hass)
    level = "sensor.hydro_river_level_upstream"
    await set_state(hass, level, 1.3)
    await automation_from(hass, "hydro_guardian", level_sensor=level, silence_minutes=15)

    await move_to(hass, freezer, at(23, 6, 10, 5))
    await set_state(hass, level, 1.3)  # the same value reported again: the link is alive
    await move_to(hass, freezer, at(23, 6, 21))
    assert operators == []
    await move_to(hass, freezer, at(23, 6, 26))  # 16 minutes since the last report

    (call,) = operators
    assert call.data["title"] == "Hydro data link silent"
    assert call.data["message"].startswith("No river level reading for 15 minutes (now: 1.3)")


async def test_an_unavailable_level_sensor_is_a_silent_link(
    blueprint_hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    hass = blueprint_hass
    await move_to(hass, freezer, at(23, 6, 0, 10))
    operators = capture_notifications(hass)
    level = "sensor.hydro_river_level_upstream"
    await set_state(hass, level, 1.3)
    await automation_from(hass, "hydro_guardian", level_sensor=level, silence_minutes=5)

    await set_state(hass, level, "unavailable")
    await move_to(hass, freezer, at(23, 6, 3, 5))
    assert operators == []
    await move_to(hass, freezer, at(23, 6, 6, 5))

    assert [c.data["title"] for c in operators] == ["Hydro data link silent"]
    assert "(now: unavailable)" in operators[0].data["message"]


# --- Street peak challenge ---------------------------------------------------------------


async def test_members_are_asked_to_ease_off_when_the_street_peaks_over_target(
    blueprint_hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    hass = blueprint_hass
    await move_to(hass, freezer, at(23, 15, 0, 10))
    members = capture_notifications(hass, "elm_road_members")
    demand = "sensor.elm_road_demand"
    await set_state(hass, demand, 30000, unit_of_measurement="W", device_class="power")
    await automation_from(
        hass,
        "street_peak_challenge",
        street_demand=demand,
        target_kw=40,
        street_name="Elm Road",
        notify_action="notify.elm_road_members",
    )

    await set_state(hass, demand, 45000)  # over the target, but before the peak
    await move_to(hass, freezer, at(23, 15, 6))
    assert members == []

    await move_to(hass, freezer, at(23, 16, 0))  # the peak starts with the street over
    (call,) = members
    assert call.data["title"] == "Peak challenge for Elm Road"
    assert call.data["message"].startswith(
        "Elm Road is using 45.0 kW at peak time, above our target of 40 kW."
    )

    await set_state(hass, demand, 38000)
    await set_state(hass, demand, 47000)
    await move_to(hass, freezer, at(23, 16, 10))  # over again, within the cool-down
    assert len(members) == 1

    await move_to(hass, freezer, at(23, 16, 30, 1))  # the cool-down is over
    await set_state(hass, demand, 39000)
    await set_state(hass, demand, 41500)
    await move_to(hass, freezer, at(23, 16, 35, 2))
    assert len(members) == 2
    assert "41.5 kW" in members[-1].data["message"]

    await move_to(hass, freezer, at(23, 19, 0, 1))  # after the peak
    await set_state(hass, demand, 30000)
    await set_state(hass, demand, 60000)
    await move_to(hass, freezer, at(23, 19, 6))
    assert len(members) == 2


async def test_a_street_demand_in_kilowatts_under_target_asks_nothing(
    blueprint_hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    hass = blueprint_hass
    await move_to(hass, freezer, at(23, 15, 50))
    members = capture_notifications(hass)
    demand = "sensor.elm_road_demand"
    await set_state(hass, demand, 39.5, unit_of_measurement="kW", device_class="power")
    await automation_from(hass, "street_peak_challenge", street_demand=demand, target_kw=40)

    await move_to(hass, freezer, at(23, 16, 0))
    assert members == []
    await set_state(hass, demand, 40.5)
    await move_to(hass, freezer, at(23, 16, 5, 1))
    assert [c.data["title"] for c in members] == ["Peak challenge for our street"]
