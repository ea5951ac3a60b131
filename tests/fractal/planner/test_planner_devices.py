"""Immersion heater and run-of-river hydro: hand-checkable plans, replayed independently."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fractal.planner import HomePlan, Planner, Scenario, parse_scenario
from fractal.planner.document import to_plan_document
from fractal.protocol import dump

from tests.support.planner_check import Replay, reference_cost, replay
from tests.support.planner_scenarios import battery, home, scenario


def plan_one(document: dict[str, Any]) -> tuple[Scenario, HomePlan, Replay]:
    parsed = parse_scenario(document)
    result = Planner().plan_home(parsed, parsed.homes[0])
    checked = replay(parsed, parsed.homes[0], result)
    assert checked.violations == []
    assert result.cost_p == pytest.approx(checked.cost_p, abs=1e-6)
    return parsed, result, checked


def tank(**overrides: Any) -> dict[str, Any]:
    return {
        "power_kw": 3.0,
        "tank_kwh": 10.0,
        "store_kwh": 0.0,
        "loss_per_hour": 0.0,
        "demand_kw": [0.0, 0.0, 0.0, 4.0],
    } | overrides


def river(slots: int, **overrides: Any) -> dict[str, Any]:
    # 1 m3/s raises a 3 600 m2 pond by 1 m per hour; 0.5 m3/s gives 50 kW.
    return {
        "level_m": 10.0,
        "level_min_m": 9.5,
        "level_max_m": 10.5,
        "rate_max_m_per_h": 0.5,
        "pond_area_m2": 3600.0,
        "inflow_m3s": [0.5] * slots,
        "flow_max_m3s": 1.0,
        "kw_per_m3s": 100.0,
    } | overrides


def test_the_tank_heats_in_the_cheapest_hours_before_it_is_needed() -> None:
    # 4 kWh of hot water at hour 3; the two cheapest hours before it are 0 and 2.
    document = scenario(
        home(load=[0.0] * 4, imp=[5.0, 20.0, 8.0, 30.0], exp=[0.0] * 4, immersion=tank())
    )
    parsed, result, checked = plan_one(document)
    assert str(result.status) == "optimal"
    assert result.device["heat"] == pytest.approx([3.0, 0.0, 1.0, 0.0], abs=1e-7)
    assert result.cost_p == pytest.approx(3 * 5.0 + 1 * 8.0)
    assert checked.tank_kwh[-1] == pytest.approx(0.0, abs=1e-7)
    assert result.cost_p == pytest.approx(reference_cost(parsed, parsed.homes[0]), rel=1e-6)


def test_surplus_pv_heats_water_instead_of_exporting_cheaply() -> None:
    document = scenario(
        home(
            load=[0.0] * 4,
            pv=[3.0, 0.0, 0.0, 0.0],
            imp=[30.0] * 4,
            exp=[4.0] * 4,
            immersion=tank(),
        )
    )
    _, result, _ = plan_one(document)
    assert result.device["heat"][0] == pytest.approx(3.0)
    # 3 kWh from PV (forgoing 12 p of export), 1 kWh bought at 30 p.
    assert result.cost_p == pytest.approx(30.0)


def test_hot_water_beyond_the_heater_is_relaxed_with_a_reason() -> None:
    document = scenario(
        home(load=[0.0] * 2, imp=[10.0] * 2, exp=[0.0] * 2, immersion=tank(demand_kw=[0, 9.0]))
    )
    _, result, _ = plan_one(document)
    assert result.status.kind == "relaxed"
    assert "hot water 3.000 kWh short of demand" in str(result.status)


def test_the_river_stores_water_when_cheap_and_releases_it_when_dear() -> None:
    # Two cheap hours then two dear ones: hold water back (level up), then release it.
    slots = 4
    document = scenario(
        home(
            load=[0.0] * slots,
            imp=[30.0] * slots,
            exp=[5.0, 5.0, 25.0, 25.0],
            export_max_kw=200.0,
            hydro=river(slots),
        )
    )
    parsed, result, checked = plan_one(document)
    assert str(result.status) == "optimal"
    # 2 m of water arrives in 4 h and the end level must be back at 10 m. The band lets the
    # pond store 0.5 m while cheap (10.5 m), so the dear hours release 1.5 m, the cheap 0.5 m.
    assert max(checked.level_m) == pytest.approx(10.5)
    assert checked.level_m[-1] == pytest.approx(10.0)
    assert result.device["flow"][2:].sum() == pytest.approx(1.5)
    assert result.device["flow"][:2].sum() == pytest.approx(0.5)
    assert result.cost_p == pytest.approx(-(0.5 * 100 * 5 + 1.5 * 100 * 25))
    assert result.cost_p == pytest.approx(reference_cost(parsed, parsed.homes[0]), rel=1e-6)


def test_the_level_rate_of_change_limits_how_fast_water_is_released() -> None:
    slots = 3
    document = scenario(
        home(
            load=[0.0] * slots,
            imp=[30.0] * slots,
            exp=[5.0, 50.0, 5.0],
            export_max_kw=500.0,
            hydro=river(slots, rate_max_m_per_h=0.1, inflow_m3s=[0.2] * slots),
        )
    )
    _, result, checked = plan_one(document)
    # The level may move 0.1 m per hour: rise 0.1 m first (flow 0.1 of the 0.2 m3/s inflow),
    # fall 0.1 m in the dear hour (flow 0.3), then hold (flow 0.2) to end at 10 m.
    assert result.device["flow"] == pytest.approx([0.1, 0.3, 0.2], abs=1e-6)
    assert checked.level_m == pytest.approx([10.1, 10.0, 10.0])
    assert result.cost_p == pytest.approx(-(0.1 * 5 + 0.3 * 50 + 0.2 * 5) * 100)


def test_a_start_outside_the_licence_band_is_relaxed() -> None:
    slots = 3
    document = scenario(
        home(
            load=[0.0] * slots,
            imp=[10.0] * slots,
            exp=[5.0] * slots,
            export_max_kw=200.0,
            hydro=river(slots, level_m=11.0, rate_max_m_per_h=0.2),
        )
    )
    _, result, checked = plan_one(document)
    assert result.status.kind == "relaxed"
    assert "river level outside the licence band" in str(result.status)
    # It comes down as fast as the licence's rate allows, to the top of the band.
    assert checked.level_m == pytest.approx([10.8, 10.6, 10.5])


def test_a_home_with_every_device_fits_the_shadow_budget() -> None:
    slots = 96
    ev = {
        "arrival": "2026-11-22T18:00:00Z",
        "departure": "2026-11-23T07:00:00Z",
        "energy_kwh": 20.0,
        "max_kw": 7.4,
    }
    prices = [7.5 if slot % 48 < 10 else 28.0 + slot % 7 for slot in range(slots)]
    document = scenario(
        home(
            load=[0.4 + 0.1 * (slot % 5) for slot in range(slots)],
            pv=[max(0.0, 3.0 - abs(slot % 48 - 26) * 0.3) for slot in range(slots)],
            imp=prices,
            exp=[4.0 + slot % 3 for slot in range(slots)],
            battery=battery(soc_kwh=4.0),
            ev=ev,
            immersion=tank(demand_kw=[0.5 * (slot % 6 == 0) for slot in range(slots)]),
            hydro=river(slots, inflow_m3s=[0.05 + 0.001 * slot for slot in range(slots)]),
            export_max_kw=100.0,
        ),
        step_seconds=1800,
    )
    parsed, result, _ = plan_one(document)
    plan = to_plan_document(parsed, parsed.homes[0], result, datetime(2026, 11, 21, 23, tzinfo=UTC))
    assert set(plan.devices) == {"battery", "ev_charger", "immersion", "hydro"}
    assert len(dump(plan).encode()) <= 8 * 1024
