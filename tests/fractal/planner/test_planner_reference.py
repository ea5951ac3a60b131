"""Random scenarios: every plan replays cleanly and costs what an independent LP finds optimal."""

from __future__ import annotations

from typing import Any

import pytest
from fractal.planner import Planner, parse_scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.planner_check import reference_cost, replay
from tests.support.planner_scenarios import START


def _number(low: float, high: float) -> st.SearchStrategy[float]:
    """A value to the microunit, as forecasts and tariffs are: scipy's interior-point reference
    stops with a solve error on values like 1e-162 (the planner itself copes)."""
    return st.floats(low, high, allow_nan=False).map(lambda value: round(value, 6))


LP_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
power = _number(0.0, 6.0)
price = _number(-20.0, 60.0)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """Scenarios whose hard limits can all be met, with export never dearer than import."""
    slots = draw(st.integers(2, 12))
    step = draw(st.sampled_from([900, 1800, 3600]))
    load = draw(st.lists(power, min_size=slots, max_size=slots))
    pv = draw(st.lists(power, min_size=slots, max_size=slots))
    imp = draw(st.lists(price, min_size=slots, max_size=slots))
    margin = draw(st.lists(_number(0.0, 30.0), min_size=slots, max_size=slots))
    capacity = draw(_number(0.0, 15.0))
    soc_min = draw(_number(0.0, 1.0)) * capacity
    soc_max = soc_min + draw(_number(0.0, 1.0)) * (capacity - soc_min)
    soc = soc_min + draw(_number(0.0, 1.0)) * (soc_max - soc_min)
    charge_kw, discharge_kw = draw(power), draw(power)
    home: dict[str, Any] = {
        "id": "random",
        "pv_kw": pv,
        "load_kw": load,
        "import_p_per_kwh": imp,
        "export_p_per_kwh": [p - m for p, m in zip(imp, margin, strict=True)],
        "grid": {
            # Always enough to serve load, a full-power charge and the EV: hard limits hold.
            "import_max_kw": max(load) + charge_kw + 8.0,
            "export_max_kw": draw(power),
            "export_stored_grid_energy": draw(st.booleans()),
        },
        "battery": {
            "capacity_kwh": capacity,
            "soc_kwh": soc,
            "soc_min_kwh": soc_min,
            "soc_max_kwh": soc_max,
            "charge_kw": charge_kw,
            "discharge_kw": discharge_kw,
            "charge_efficiency": draw(_number(0.7, 1.0)),
            "discharge_efficiency": draw(_number(0.7, 1.0)),
            "cycle_cost_p_per_kwh": draw(_number(0.0, 5.0)),
            "terminal_soc_min_kwh": soc_min + draw(_number(0.0, 1.0)) * (soc - soc_min),
            "exportable_kwh": draw(_number(0.0, 1.0)) * soc,
        },
    }
    if draw(st.booleans()):
        first = draw(st.integers(0, slots - 1))
        last = draw(st.integers(first + 1, slots))
        hours = (last - first) * step / 3600
        max_kw = draw(_number(1.4, 7.4))
        home["ev"] = {
            "arrival": _at(first * step),
            "departure": _at(last * step),
            "energy_kwh": draw(_number(0.0, 0.9)) * max_kw * hours * 0.9,
            "max_kw": max_kw,
            "efficiency": 0.9,
        }
    if draw(st.booleans()):
        power_kw = draw(_number(0.5, 3.0))
        tank_kwh = draw(_number(1.0, 10.0))
        home["immersion"] = {
            "power_kw": power_kw,
            "tank_kwh": tank_kwh,
            "store_kwh": draw(_number(0.0, 1.0)) * tank_kwh,
            "loss_per_hour": draw(_number(0.0, 0.05)),
            # Never more than the heater gives in the same slot: hard limits hold.
            "demand_kw": draw(st.lists(_number(0.0, power_kw), min_size=slots, max_size=slots)),
        }
    if draw(st.booleans()):
        level_min = draw(_number(5.0, 10.0))
        level_max = level_min + draw(_number(0.05, 1.0))
        home["hydro"] = {
            "level_m": level_min + draw(_number(0.0, 1.0)) * (level_max - level_min),
            "level_min_m": level_min,
            "level_max_m": level_max,
            "rate_max_m_per_h": draw(_number(0.01, 0.5)),
            "pond_area_m2": draw(_number(500.0, 20_000.0)),
            "inflow_m3s": draw(st.lists(_number(0.0, 2.0), min_size=slots, max_size=slots)),
            "flow_max_m3s": draw(_number(0.1, 2.0)),
            "kw_per_m3s": draw(_number(5.0, 100.0)),
        }
    return {"start": START, "step_seconds": step, "homes": [home]}


def _at(seconds: int) -> str:
    return f"2026-11-22T{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:00Z"


@LP_SETTINGS
@given(document=scenarios())
def test_random_plans_are_feasible_and_optimal(document: dict[str, Any]) -> None:
    parsed = parse_scenario(document)
    home = parsed.homes[0]
    result = Planner().plan_home(parsed, home)
    assert str(result.status) == "optimal"
    checked = replay(parsed, home, result)
    assert checked.violations == []
    assert result.cost_p == pytest.approx(checked.cost_p, rel=1e-9, abs=1e-9)
    assert result.cost_p == pytest.approx(reference_cost(parsed, home), rel=1e-6, abs=1e-5)


@LP_SETTINGS
@given(documents=st.lists(scenarios(), min_size=2, max_size=4))
def test_warm_reused_models_give_the_same_plans_as_fresh_ones(
    documents: list[dict[str, Any]],
) -> None:
    shared = Planner()
    for document in documents:
        # One configuration, many data: reshape every document onto the first one's devices.
        document["homes"][0]["battery"] |= {
            key: documents[0]["homes"][0]["battery"][key]
            for key in ("charge_efficiency", "discharge_efficiency", "charge_kw", "discharge_kw")
        }
        parsed = parse_scenario(document)
        warm = shared.plan_home(parsed, parsed.homes[0])
        fresh = Planner().plan_home(parsed, parsed.homes[0])
        assert warm.cost_p == pytest.approx(fresh.cost_p, rel=1e-6, abs=1e-5)
        assert replay(parsed, parsed.homes[0], warm).violations == []


@LP_SETTINGS
@given(document=scenarios(), premium=st.lists(_number(0.0, 20.0)))
def test_export_dearer_than_import_gives_netted_plans_and_an_honest_status(
    document: dict[str, Any], premium: list[float]
) -> None:
    # Some slots pay more for export than import costs: the LP relaxation would import and
    # export at once there. Plans must still replay (one direction per slot, as a meter does).
    home = document["homes"][0]
    for slot, extra in enumerate(premium[: len(home["import_p_per_kwh"])]):
        home["export_p_per_kwh"][slot] = home["import_p_per_kwh"][slot] + extra
    parsed = parse_scenario(document)
    result = Planner().plan_home(parsed, parsed.homes[0])
    checked = replay(parsed, parsed.homes[0], result)
    assert checked.violations == []
    assert result.status.kind in ("optimal", "feasible")
    # The reference allows importing and exporting at once, so it bounds the cost from below;
    # a plan called optimal must reach that bound.
    bound = reference_cost(parsed, parsed.homes[0])
    assert result.cost_p >= bound - 1e-5 * max(1.0, abs(bound))
    if result.status.kind == "optimal":
        assert result.cost_p == pytest.approx(bound, rel=1e-6, abs=1e-5)
