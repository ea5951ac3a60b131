"""The simulated home's device model: energy balance, battery limits, plans, determinism."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fractal.protocol import Plan, Reading, parse
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aggregator_cloud.simulation.home import (
    BatterySpec,
    EvSpec,
    HomeModel,
    HomeReading,
    HomeSpec,
    clear_sky_share,
)
from aggregator_cloud.simulation.homes import home_specs

MIDNIGHT = datetime(2026, 6, 21, tzinfo=UTC)
STEP = timedelta(seconds=60)
BATTERY = BatterySpec(capacity_wh=10_000, max_charge_w=3000, max_discharge_w=2500)


def home(
    battery: BatterySpec | None = BATTERY, ev: EvSpec | None = None, seed: int = 1
) -> HomeSpec:
    return HomeSpec("sim-x", "1 Test Row", {"street": "Test Row"}, 4.0, seed, 300.0, battery, ev)


def plan(windows: list[dict[str, Any]], *, ev: list[float] | None = None) -> Plan:
    """A 24-slot plan of 1 h from MIDNIGHT with these battery windows."""
    devices: dict[str, Any] = {"battery": {"kind": "battery", "windows": windows}}
    if ev is not None:
        devices["ev_charger"] = {
            "kind": "ev_charger",
            "setpoints": {"quantity": "ev_current_a", "values": ev},
        }
    parsed = parse(
        Plan,
        {
            "schema": "fractal.plan.v1",
            "id": "p1",
            "node": "sim-x",
            "issued": MIDNIGHT.isoformat(),
            "start": MIDNIGHT.isoformat(),
            "step": 3600,
            "slots": 24,
            "expiry": (MIDNIGHT + timedelta(hours=24)).isoformat(),
            "source": "aggregator",
            "devices": devices,
        },
    )
    assert parsed.document is not None, parsed.problems
    return parsed.document


def run(
    model: HomeModel, hours: float, plan_doc: Plan | None = None, step: timedelta = STEP
) -> list[HomeReading]:
    readings, now = [], MIDNIGHT
    for _ in range(int(hours * 3600 / step.total_seconds())):
        now += step
        readings.append(model.step(now, step.total_seconds(), plan_doc))
    return readings


def balanced(reading: HomeReading) -> bool:
    return reading.grid_w == reading.load_w + reading.ev_w + reading.battery_w - reading.pv_w


def test_every_generated_home_balances_energy_at_every_step_of_a_day() -> None:
    for spec in home_specs(8, seed=3):
        readings = run(HomeModel(spec), 24)
        assert all(balanced(reading) for reading in readings), spec.node_id
        assert all(reading.pv_w >= 0 and reading.load_w > 0 for reading in readings)


@settings(max_examples=20, deadline=None)
@example(windows=[("charge", 1000)] * 24, initial=100.0, seed=1)  # above the band: no jump
@given(
    windows=st.lists(
        st.tuples(
            st.sampled_from(["charge", "discharge", "hold", "balance"]),
            st.integers(min_value=1, max_value=20_000),
        ),
        min_size=24,
        max_size=24,
    ),
    initial=st.floats(min_value=0, max_value=100),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_any_plan_keeps_the_balance_and_the_soc_inside_its_bounds(
    windows: list[tuple[str, int]], initial: float, seed: int
) -> None:
    battery = BatterySpec(5000, 3000, 3000, soc_min_pct=20, soc_max_pct=90, initial_soc_pct=initial)
    plan_doc = plan(
        [
            {"start": slot, "end": slot + 1, "mode": mode}
            | ({"value": value} if mode in {"charge", "discharge"} else {})
            for slot, (mode, value) in enumerate(windows)
        ]
    )
    model = HomeModel(home(battery, EvSpec(), seed))
    low, high = min(initial, 20), max(initial, 90)  # a start outside the band may only return
    readings = run(model, 24, plan_doc, step=timedelta(minutes=5))
    for reading in readings:
        assert balanced(reading)
        assert reading.soc_pct is not None
        assert low - 0.005 <= reading.soc_pct <= high + 0.005  # readings round to 0.01 %
        assert -3000 <= reading.battery_w <= 3000
    energy = readings[-1].energy  # what went in and out is what the store gained
    stored = energy["battery_charge_wh"] * 0.95 - energy["battery_discharge_wh"] / 0.95
    assert model.soc_wh - 5000 * initial / 100 == pytest.approx(stored, abs=1e-6)


def test_the_battery_follows_charge_discharge_and_hold() -> None:
    plan_doc = plan(
        [
            {"start": 0, "end": 1, "mode": "charge", "value": 1200},
            {"start": 1, "end": 2, "mode": "discharge", "value": 800},
            {"start": 2, "end": 3, "mode": "hold"},
            {"start": 3, "end": 4, "mode": "charge", "value": 9000},  # above the battery's limit
        ]
    )
    readings = run(HomeModel(home()), 4, plan_doc)
    per_hour = len(readings) // 4
    hours = [readings[hour * per_hour : (hour + 1) * per_hour] for hour in range(4)]
    assert {reading.battery_w for reading in hours[0]} == {1200}
    assert {reading.battery_w for reading in hours[1]} == {-800}
    assert {reading.battery_w for reading in hours[2]} == {0}
    assert {reading.battery_w for reading in hours[3]} == {BATTERY.max_charge_w}


def test_without_a_plan_the_battery_balances_the_grid_to_zero() -> None:
    readings = run(HomeModel(home()), 2)  # night: load only, the battery covers it
    assert all(reading.grid_w == 0 and reading.battery_w == -reading.load_w for reading in readings)


def test_a_full_battery_stops_charging_and_an_empty_one_discharging() -> None:
    full = BatterySpec(10_000, 3000, 3000, soc_max_pct=95, initial_soc_pct=94.9)
    charging = run(
        HomeModel(home(full)), 1, plan([{"start": 0, "end": 1, "mode": "charge", "value": 3000}])
    )
    assert charging[-1].soc_pct == pytest.approx(95, abs=0.01)
    assert charging[-1].battery_w == 0
    empty = BatterySpec(10_000, 3000, 3000, soc_min_pct=10, initial_soc_pct=10.1)
    discharging = run(HomeModel(home(empty)), 1)
    assert discharging[-1].soc_pct == pytest.approx(10, abs=0.01)
    assert discharging[-1].battery_w == 0
    assert discharging[-1].grid_w == discharging[-1].load_w  # the grid takes over


def test_the_ev_charges_at_the_planned_current_and_stops_when_full() -> None:
    ev = EvSpec(max_w=7360, session_wh=4000, arrival_hour=18, departure_hour=7)
    plan_doc = plan([{"start": 0, "end": 24, "mode": "hold"}], ev=[10.0] * 24)
    readings = run(HomeModel(home(ev=ev)), 3, plan_doc)
    assert readings[0].ev_w == 2300  # 10 A at 230 V
    assert readings[-1].ev_w == 0
    assert readings[-1].energy["ev_wh"] == pytest.approx(4000, abs=1)


def test_the_same_seed_gives_the_same_home_and_another_seed_another() -> None:
    first, second = run(HomeModel(home(seed=7)), 24), run(HomeModel(home(seed=7)), 24)
    assert first == second
    other = run(HomeModel(home(seed=8)), 24)
    assert [r.load_w for r in other] != [r.load_w for r in first]


def test_pv_follows_the_sun_and_the_forecast_follows_the_model() -> None:
    model = HomeModel(home())
    assert clear_sky_share(MIDNIGHT) == 0
    assert clear_sky_share(MIDNIGHT + timedelta(hours=12)) > clear_sky_share(
        MIDNIGHT + timedelta(hours=8)
    )
    pv_kw, load_kw = model.forecast(MIDNIGHT, 1800, 48)
    assert pv_kw[0] == 0
    assert max(pv_kw) == pv_kw[24] or max(pv_kw) == pv_kw[23]  # the peak at solar noon
    assert max(pv_kw) <= model.spec.pv_kwp
    actual = run(model, 24)
    measured_kwh = actual[-1].energy["pv_wh"] / 1000
    assert measured_kwh == pytest.approx(sum(pv_kw) / 2, rel=0.15)  # clouds average out
    assert actual[-1].energy["load_wh"] / 1000 == pytest.approx(sum(load_kw) / 2, rel=0.1)


def test_readings_are_valid_protocol_samples_and_snapshots() -> None:
    plan_doc = plan([{"start": 0, "end": 24, "mode": "balance"}], ev=[16.0] * 24)
    reading = run(HomeModel(home(ev=EvSpec())), 0.5, plan_doc)[-1]
    Reading.model_validate_json(json.dumps({**reading.sample(), "seq": 1}))  # or raises
    snapshot = reading.snapshot("sim-x", 42, plan_doc)
    assert snapshot.seq == 42
    assert snapshot.plan is not None
    assert (snapshot.plan.id, snapshot.plan.slot) == ("p1", 0)
    assert snapshot.grid_w == reading.grid_w


def test_bad_input_is_refused_with_a_reason() -> None:
    model = HomeModel(home())
    with pytest.raises(ValueError, match="timezone-aware"):
        model.step(datetime(2026, 6, 21, 12), 10, None)
    with pytest.raises(ValueError, match="> 0 seconds"):
        model.step(MIDNIGHT, 0, None)
    with pytest.raises(ValueError, match="soc_min_pct <= soc_max_pct"):
        BatterySpec(5000, 1000, 1000, soc_min_pct=80, soc_max_pct=20)
    with pytest.raises(ValueError, match="efficiency"):
        BatterySpec(5000, 1000, 1000, efficiency=1.5)
    with pytest.raises(ValueError, match="arrives in the evening"):
        EvSpec(arrival_hour=6, departure_hour=7)
