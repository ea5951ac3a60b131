"""The energy flows derived from one sample: the balance and the order generation and demand
are shared in (docs/views.md)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator_cloud.views.flows import FLOW_COLUMNS, derive


def one(**values: float | None) -> dict[str, float]:
    frame = pd.DataFrame([{name: values.get(name) for name in FLOW_COLUMNS[:6]}], dtype="float64")
    row = derive(frame).iloc[0]
    return {name: float(row[name]) for name in FLOW_COLUMNS}


def test_sunny_noon_pv_serves_the_home_then_the_battery_then_the_grid() -> None:
    # 4 kW PV, 1 kW of loads, the battery takes 2 kW: 1 kW leaves for the grid.
    flows = one(grid_w=-1000.0, pv_w=4000.0, battery_w=2000.0)

    assert flows["demand_w"] == 1000.0
    assert (flows["gen_to_demand_w"], flows["gen_to_battery_w"], flows["gen_export_w"]) == (
        1000.0,
        2000.0,
        1000.0,
    )
    assert (flows["import_w"], flows["export_w"]) == (0.0, 1000.0)
    assert flows["grid_to_demand_w"] == 0.0


def test_evening_battery_then_grid_meet_the_demand_ev_included() -> None:
    # No PV; the battery gives 1.5 kW; 7 kW EV + 0.5 kW household: the grid brings 6 kW.
    flows = one(grid_w=6000.0, pv_w=0.0, battery_w=-1500.0, ev_w=7000.0)

    assert flows["demand_w"] == 7500.0
    assert flows["household_w"] == 500.0
    assert flows["battery_to_demand_w"] == 1500.0
    assert flows["grid_to_demand_w"] == 6000.0
    assert flows["discharge_w"] == 1500.0


def test_a_sample_without_the_grid_has_no_balance() -> None:
    flows = one(grid_w=None, pv_w=3000.0)

    assert all(math.isnan(value) for value in flows.values())


def test_devices_a_home_does_not_have_count_as_zero() -> None:
    flows = one(grid_w=800.0)

    assert flows["demand_w"] == 800.0
    assert flows["grid_to_demand_w"] == 800.0
    assert flows["generation_w"] == 0.0


power = st.floats(min_value=0, max_value=20_000, allow_nan=False)
signed = st.floats(min_value=-20_000, max_value=20_000, allow_nan=False)


@given(grid=signed, pv=power, hydro=power, battery=signed, ev=power)
def test_every_watt_is_accounted_for(
    grid: float, pv: float, hydro: float, battery: float, ev: float
) -> None:
    flows = one(grid_w=grid, pv_w=pv, hydro_w=hydro, battery_w=battery, ev_w=ev)
    generation = pv + hydro

    assert all(flows[name] >= -1e-6 for name in FLOW_COLUMNS if name not in {"grid_w", "battery_w"})
    assert flows["generation_w"] == pytest.approx(generation)
    met = flows["gen_to_demand_w"] + flows["battery_to_demand_w"] + flows["grid_to_demand_w"]
    assert met == pytest.approx(flows["demand_w"], abs=1e-6)
    used = flows["gen_to_demand_w"] + flows["gen_to_battery_w"] + flows["gen_export_w"]
    assert used == pytest.approx(generation, abs=1e-6)
    if grid + generation - battery >= 0:
        assert flows["demand_w"] == pytest.approx(grid + generation - battery, abs=1e-6)
    assert flows["import_w"] - flows["export_w"] == pytest.approx(grid)
