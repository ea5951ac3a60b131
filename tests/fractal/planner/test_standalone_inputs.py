"""Standalone planning's inputs: the shapes the Octopus Energy, Solcast and Forecast.Solar
integrations publish, turned into the planner's home scenario; garbage gives a clear error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fractal.planner import Planner
from fractal.planner.standalone import (
    InputError,
    Period,
    PlanningInputs,
    Rates,
    load_profile,
    merged_rates,
    parse_pv_forecast,
    parse_rates,
    plan_standalone,
    slot_start,
    standalone_scenario,
)
from fractal.protocol import (
    Device,
    DeviceEnvelope,
    DeviceKind,
    LinkMode,
    Mode,
    NodeDescriptor,
    NodeEnvelope,
    PlanSource,
)

from tests.support.planner_check import reference_cost, replay

NOW = datetime(2026, 1, 15, 16, 10, tzinfo=UTC)
START = datetime(2026, 1, 15, 16, 0, tzinfo=UTC)


def octopus_rates(start: datetime, values_gbp: list[float]) -> list[dict[str, Any]]:
    """The Octopus Energy integration's `rates` attribute: GBP/kWh per half hour."""
    return [
        {
            "start": (start + timedelta(minutes=30 * i)).isoformat(),
            "end": (start + timedelta(minutes=30 * (i + 1))).isoformat(),
            "value_inc_vat": value,
            "is_capped": False,
        }
        for i, value in enumerate(values_gbp)
    ]


def battery_node(**limits: Any) -> NodeDescriptor:
    envelope = {"max_charge_w": 3000, "max_discharge_w": 2500, "soc_min_pct": 10} | limits
    return NodeDescriptor(
        node="elm-road-12",
        name="Elm Road 12",
        software="test",
        link=LinkMode.STANDALONE,
        devices=(
            Device(
                id="BATTERY01",
                kind=DeviceKind.BATTERY,
                capabilities=(Mode.CHARGE, Mode.DISCHARGE, Mode.HOLD, Mode.BALANCE),
                envelope=DeviceEnvelope(**envelope),
            ),
        ),
        envelope=NodeEnvelope(import_max_w=15000, export_max_w=3680),
    )


# --- rates --------------------------------------------------------------------------------------


def test_octopus_rates_are_read_in_pence_whatever_the_entity_unit_says() -> None:
    rates = octopus_rates(START, [0.25, 0.075])
    in_pounds = parse_rates("2026-01-15T16:00:00+00:00", {"rates": rates})  # event entity
    assert in_pounds.at(START) == pytest.approx(25.0)
    assert in_pounds.at(START + timedelta(minutes=45)) == pytest.approx(7.5)
    assert in_pounds.at(START + timedelta(hours=1)) is None  # past the last rate
    in_pence = parse_rates("7.5", {"rates": rates, "unit_of_measurement": "p/kWh"})
    assert in_pence.at(START) == pytest.approx(0.25)


def test_a_plain_sensor_is_a_flat_rate_in_its_unit() -> None:
    assert parse_rates("0.15", {"unit_of_measurement": "GBP/kWh"}) == Rates(flat=15.0)
    assert parse_rates("15", {"unit_of_measurement": "p/kWh"}).at(NOW) == 15.0


def test_published_rates_win_over_a_flat_rate_where_they_exist() -> None:
    today = parse_rates("x", {"rates": octopus_rates(START, [0.30])})
    tomorrow = parse_rates("x", {"rates": octopus_rates(START + timedelta(hours=1), [0.05])})
    merged = merged_rates([tomorrow, Rates(flat=20.0), today])
    assert merged.at(START) == pytest.approx(30.0)
    assert merged.at(START + timedelta(minutes=30)) == 20.0  # the gap: the flat rate
    assert merged.at(START + timedelta(hours=1)) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("state", "attributes", "problem"),
    [
        ("15", {}, "needs a unit"),
        ("15", {"unit_of_measurement": "EUR/kWh"}, "unknown rate unit 'EUR/kWh'"),
        ("unknown", {"unit_of_measurement": "p/kWh"}, "state is not a number: 'unknown'"),
        ("nan", {"unit_of_measurement": "p/kWh"}, "not a finite number"),
        ("x", {"rates": "cheap"}, "not a list"),
        ("x", {"rates": []}, "not a list"),
        ("x", {"rates": [3]}, "rates[0] is not a mapping"),
        ("x", {"rates": [{"start": "2026-01-15T16:00:00+00:00"}]}, "rates[0].end is not a time"),
        (
            "x",
            {"rates": [{"start": "2026-01-15T16:00:00", "end": "2026-01-15T16:30:00+00:00"}]},
            "has no time zone",
        ),
        ("x", {"rates": [{"start": "teatime", "end": "later"}]}, "not an ISO 8601 time"),
        ("x", {"rates": [octopus_rates(START, [0.1])[0] | {"value_inc_vat": True}]}, "number"),
        (
            "x",
            {"rates": [octopus_rates(START, [0.1])[0] | {"end": START.isoformat()}]},
            "ends before it starts",
        ),
    ],
)
def test_unusable_rates_say_why(state: str, attributes: dict[str, Any], problem: str) -> None:
    with pytest.raises(InputError, match=None) as raised:
        parse_rates(state, attributes)
    assert problem in str(raised.value)


# --- PV forecast ----------------------------------------------------------------------------


def test_solcast_detailed_forecast_is_kw_per_half_hour() -> None:
    forecast = [
        {"period_start": START.isoformat(), "pv_estimate": 1.2, "pv_estimate10": 0.5},
        {"period_start": (START + timedelta(minutes=30)).isoformat(), "pv_estimate": 2.0},
    ]
    periods = parse_pv_forecast("10.5", {"detailedForecast": forecast})
    assert periods == (
        Period(START, START + timedelta(minutes=30), 1.2),
        Period(START + timedelta(minutes=30), START + timedelta(hours=1), 2.0),
    )


def test_forecast_solar_wh_per_hour_and_watts() -> None:
    wh_hours = {START.isoformat(): 1500, (START + timedelta(hours=1)).isoformat(): 500}
    periods = parse_pv_forecast("", {"wh_hours": wh_hours})
    assert [p.value for p in periods] == [1.5, 0.5]  # kW over each hour
    assert periods[0].end == START + timedelta(hours=1)
    watts = parse_pv_forecast("", {"watts": {START.isoformat(): 800, NOW.isoformat(): -5}})
    assert [p.value for p in watts] == [0.8, 0.0]  # never negative


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        ({}, "no forecast periods"),
        ({"detailedForecast": None}, "not a list"),
        ({"detailedForecast": ["sunny"]}, "detailedForecast[0] is not a mapping"),
        ({"detailedForecast": [{"period_start": "noon", "pv_estimate": 1}]}, "ISO 8601"),
        ({"detailedForecast": [{"period_start": START.isoformat()}]}, "pv_estimate"),
        ({"wh_hours": [1, 2]}, "not a mapping"),
        ({"watts": {START.isoformat(): "lots"}}, "is not a number"),
    ],
)
def test_unusable_forecasts_say_why(attributes: dict[str, Any], problem: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_pv_forecast("", attributes)
    assert problem in str(raised.value)


# --- load -----------------------------------------------------------------------------------


def test_the_load_profile_is_the_mean_of_the_same_half_hour_over_the_days() -> None:
    samples = [
        (datetime(2026, 1, 13, 17, tzinfo=UTC), 2.0),
        (datetime(2026, 1, 14, 17, tzinfo=UTC), 4.0),
        (datetime(2026, 1, 14, 3, tzinfo=UTC), -1.0),  # a meter's glitch: no negative load
        (datetime(2026, 1, 14, 4, tzinfo=UTC), float("nan")),
    ]
    profile = load_profile(samples)
    assert profile == {34: 3.0, 35: 3.0, 6: 0.0, 7: 0.0}


# --- the scenario and the plan --------------------------------------------------------------


def agile_like(slots: int) -> list[float]:
    """Expensive evening peak, cheap night, GBP/kWh."""
    hours = [(START + timedelta(minutes=30 * i)).hour for i in range(slots)]
    return [0.05 if 0 <= hour < 5 else 0.35 if 16 <= hour < 19 else 0.20 for hour in hours]


def inputs(**changes: Any) -> PlanningInputs:
    values = agile_like(62)  # to 23:00 tomorrow, as Agile publishes
    base: dict[str, Any] = {
        "import_rates": parse_rates("", {"rates": octopus_rates(START, values)}),
        "export_rates": Rates(flat=15.0),
        "pv": (),
        "load": dict.fromkeys(range(48), 0.5),
        "soc_pct": 20.0,
        "capacity_kwh": 10.0,
    }
    return PlanningInputs(**(base | changes))


def test_the_plan_charges_in_the_cheap_night_and_runs_the_evening_peak_from_the_battery() -> None:
    outcome = plan_standalone(Planner(), battery_node(), inputs(), NOW)
    plan = outcome.plan
    assert plan is not None
    assert outcome.status == "optimal"
    assert plan.source is PlanSource.STANDALONE
    assert plan.start == START
    assert plan.slots == 62
    assert plan.expiry == plan.end == START + timedelta(minutes=30 * 62)
    assert set(plan.devices) == {"BATTERY01"}
    battery = plan.devices["BATTERY01"]
    night = [battery.mode_at(slot) for slot in range(16, 26)]  # 00:00-05:00
    assert Mode.CHARGE in night
    assert Mode.DISCHARGE not in night
    assert battery.mode_at(0) is Mode.DISCHARGE  # 16:00, the peak: from the battery
    assert outcome.problems == ("no PV forecast: planned without PV",)
    # Checked without the planner's code: feasible, and as cheap as a reference LP finds.
    assert outcome.scenario is not None
    assert outcome.home is not None
    planned = Planner().plan_home(outcome.scenario, outcome.home)
    check = replay(outcome.scenario, outcome.home, planned)
    assert check.violations == []
    assert outcome.cost_p == pytest.approx(check.cost_p, abs=0.01)
    assert outcome.cost_p == pytest.approx(reference_cost(outcome.scenario, outcome.home), abs=0.05)


def test_the_envelope_bounds_the_battery_in_the_scenario() -> None:
    problems: list[str] = []
    _, home, battery_id = standalone_scenario(battery_node(soc_max_pct=90), inputs(), NOW, problems)
    assert battery_id == "BATTERY01"
    assert home.battery is not None
    assert (home.battery.soc_min_kwh, home.battery.soc_max_kwh) == (1.0, 9.0)
    assert (home.battery.charge_kw, home.battery.discharge_kw) == (3.0, 2.5)
    assert (home.grid.import_max_kw, home.grid.export_max_kw) == (15.0, 3.68)


def test_gaps_are_filled_and_listed() -> None:
    pv = (Period(START, START + timedelta(hours=2), 1.0),)
    outcome = plan_standalone(
        Planner(), battery_node(), inputs(pv=pv, export_rates=None, load={34: 1.0}), NOW
    )
    assert outcome.plan is not None
    assert "no export rate: export counted as unpaid" in outcome.problems
    assert "PV forecast missing from 2026-01-15 18:00 UTC: counted as 0" in outcome.problems
    assert "load history covers 1 of 48 half hours: the rest at the mean" in outcome.problems
    assert outcome.home is not None
    assert outcome.home.pv_kw[:5] == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert outcome.home.export_p_per_kwh == [0.0] * 62


@pytest.mark.parametrize(
    ("descriptor", "changes", "problem"),
    [
        (battery_node(), {"import_rates": Rates()}, "no import rate for the half hour from"),
        (battery_node(), {"soc_pct": None}, "state of charge is unknown"),
        (battery_node(), {"capacity_kwh": None}, "capacity is unknown"),
        (battery_node(), {"capacity_kwh": 1e9}, "battery.capacity_kwh"),
        (
            NodeDescriptor(node="n", name="n", software="t", link=LinkMode.STANDALONE),
            {},
            "no battery to plan",
        ),
    ],
)
def test_nothing_to_plan_says_why(
    descriptor: NodeDescriptor, changes: dict[str, Any], problem: str
) -> None:
    outcome = plan_standalone(Planner(), descriptor, inputs(**changes), NOW)
    assert outcome.plan is None
    assert outcome.status == "no_plan"
    assert any(problem in text for text in outcome.problems), outcome.problems


def test_only_the_first_of_two_batteries_is_planned_and_that_is_said() -> None:
    node = battery_node()
    second = node.devices[0].model_copy(update={"id": "BATTERY02"})
    two = node.model_copy(update={"devices": (*node.devices, second)})
    outcome = plan_standalone(Planner(), two, inputs(), NOW)
    assert outcome.plan is not None
    assert set(outcome.plan.devices) == {"BATTERY01"}
    assert "only the first battery is planned (2 on this node)" in outcome.problems


def test_a_capacity_in_the_envelope_is_used_when_none_is_given() -> None:
    outcome = plan_standalone(
        Planner(), battery_node(capacity_wh=5000), inputs(capacity_kwh=None), NOW
    )
    assert outcome.home is not None
    assert outcome.home.battery is not None
    assert outcome.home.battery.capacity_kwh == 5.0


def test_slots_start_on_the_utc_half_hour() -> None:
    assert slot_start(datetime(2026, 1, 15, 16, 44, 59, tzinfo=UTC)) == START + timedelta(
        minutes=30
    )
