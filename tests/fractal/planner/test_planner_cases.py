"""Hand-checkable plans: each expected figure can be worked out on paper."""

from __future__ import annotations

import numpy as np
import pytest
from fractal.planner import Planner, parse_scenario

from tests.support.planner_check import reference_cost, replay
from tests.support.planner_scenarios import battery, home, scenario


def plan_one(document: dict[str, object]) -> tuple[object, object, object]:
    parsed = parse_scenario(document)
    result = Planner().plan_home(parsed, parsed.homes[0])
    checked = replay(parsed, parsed.homes[0], result)
    assert checked.violations == []
    assert result.cost_p == pytest.approx(checked.cost_p, abs=1e-6)
    return parsed, result, checked


def test_flat_prices_do_not_cycle_the_battery() -> None:
    document = scenario(
        home(load=[1.0] * 6, imp=[20.0] * 6, exp=[5.0] * 6, battery=battery(soc_kwh=5.0))
    )
    _, result, _ = plan_one(document)
    assert str(result.status) == "optimal"
    assert np.allclose(result.charge_kw, 0.0, atol=1e-7)
    # Discharging what is stored serves the load; nothing is bought to be stored.
    assert result.import_kw.sum() == pytest.approx(6.0 - result.discharge_kw.sum(), abs=1e-6)


def test_cheap_night_charges_for_the_dear_evening() -> None:
    # Two cheap hours, two dear hours with 2 kW load. With 80 % charge efficiency, serving 4 kWh
    # needs 5 kWh bought at 5 p (25 p) plus 1 p/kWh cycle cost on 4 kWh discharged: 29 p.
    document = scenario(
        home(
            load=[0.0, 0.0, 2.0, 2.0],
            imp=[5.0, 5.0, 30.0, 30.0],
            exp=[0.0] * 4,
            battery=battery(
                charge_efficiency=0.8, discharge_efficiency=1.0, cycle_cost_p_per_kwh=1.0
            ),
        )
    )
    _, result, _ = plan_one(document)
    assert str(result.status) == "optimal"
    assert result.charge_kw[:2].sum() == pytest.approx(5.0)
    assert result.discharge_kw[2:] == pytest.approx([2.0, 2.0])
    assert result.cost_p == pytest.approx(29.0)


def test_negative_prices_import_and_curtail() -> None:
    # Paid 10 p/kWh to import, charged 5 p/kWh to export: curtail all PV, import for the load.
    document = scenario(home(load=[1.0], imp=[-10.0], exp=[-5.0], pv=[3.0]))
    _, result, _ = plan_one(document)
    assert str(result.status) == "optimal"
    assert result.pv_used_kw == pytest.approx([0.0], abs=1e-7)
    assert result.grid_kw == pytest.approx([1.0])
    assert result.cost_p == pytest.approx(-10.0)


def test_flat_export_above_night_import_is_not_grid_to_grid_arbitrage() -> None:
    # Night import 7.5 p, flat export 15 p, no PV: buying at night to sell at 15 p would
    # earn 15 * 0.95**2 - 7.5 - 1 = 5 p/kWh. A flat export tariff pays for PV only.
    night, day = [7.5] * 4, [30.0] * 4
    document = scenario(
        home(
            load=[0.5] * 8,
            imp=night + day,
            exp=[15.0] * 8,
            battery=battery(),
            import_max_kw=10.0,
            export_max_kw=10.0,
        )
    )
    parsed, result, _ = plan_one(document)
    assert np.allclose(result.export_kw, 0.0, atol=1e-7)
    assert np.allclose(np.minimum(result.import_kw, result.export_kw), 0.0)
    # It still charges at night to serve the dear day-time load.
    assert result.charge_kw[:4].sum() > 1.0
    assert result.cost_p == pytest.approx(reference_cost(parsed, parsed.homes[0]), rel=1e-6)


def test_a_time_of_use_export_tariff_may_export_stored_energy() -> None:
    document = scenario(
        home(
            load=[0.0] * 4,
            imp=[5.0, 5.0, 40.0, 40.0],
            exp=[0.0, 0.0, 30.0, 30.0],
            battery=battery(cycle_cost_p_per_kwh=0.0),
            grid_override=None,
        )
    )
    document["homes"][0].pop("grid_override")
    document["homes"][0]["grid"]["export_stored_grid_energy"] = True
    parsed, result, _ = plan_one(document)
    assert result.export_kw[2:].sum() > 1.0
    assert result.cost_p == pytest.approx(reference_cost(parsed, parsed.homes[0]), rel=1e-6)


def test_pv_export_above_import_price_does_not_import_and_export_at_once() -> None:
    # Import is cheaper than export in the same slot: the LP relaxation would buy for the load
    # while selling all PV. A meter is net, so the plan fixes a direction and says so.
    document = scenario(
        home(load=[1.0] * 3, imp=[5.0] * 3, exp=[15.0] * 3, pv=[3.0] * 3, export_max_kw=10)
    )
    _, result, _ = plan_one(document)
    assert result.status.kind == "feasible"
    assert "direction fixed" in str(result.status)
    # Export the 2 kW surplus at 15 p for three hours.
    assert result.export_kw == pytest.approx([2.0] * 3)
    assert result.cost_p == pytest.approx(-90.0)


def test_start_below_the_band_is_relaxed_with_a_reason() -> None:
    document = scenario(
        home(
            load=[0.0] * 3,
            imp=[10.0] * 3,
            exp=[0.0] * 3,
            battery=battery(soc_kwh=0.0, soc_min_kwh=5.0, charge_kw=2.0),
        )
    )
    _, result, checked = plan_one(document)
    assert result.status.kind == "relaxed"
    assert "SoC outside its band" in str(result.status)
    # It charges at full power until back inside the band.
    assert result.charge_kw[:2] == pytest.approx([2.0, 2.0])
    assert checked.soc_kwh[-1] >= 5.0 - 1e-6


def test_impossible_ev_target_is_relaxed_and_charges_all_it_can() -> None:
    ev = {
        "arrival": "2026-11-22T00:00:00Z",
        "departure": "2026-11-22T02:00:00Z",
        "energy_kwh": 30.0,
        "max_kw": 7.0,
        "min_kw": 1.4,
        "efficiency": 1.0,
    }
    document = scenario(home(load=[0.0] * 4, imp=[10.0] * 4, exp=[0.0] * 4, ev=ev))
    _, result, checked = plan_one(document)
    assert result.status.kind == "relaxed"
    assert "EV 16.000 kWh short" in str(result.status)
    assert result.ev_kw == pytest.approx([7.0, 7.0, 0.0, 0.0])
    assert checked.ev_energy_kwh == pytest.approx(14.0)


def test_ev_charges_in_the_cheapest_plugged_in_slots() -> None:
    ev = {
        "arrival": "2026-11-22T01:30:00Z",  # half of slot 1
        "departure": "2026-11-22T04:00:00Z",
        "energy_kwh": 9.0,
        "max_kw": 7.0,
        "efficiency": 0.9,
    }
    document = scenario(home(load=[0.0] * 5, imp=[1.0, 2.0, 30.0, 20.0, 0.5], exp=[0.0] * 5, ev=ev))
    _, result, _ = plan_one(document)
    assert str(result.status) == "optimal"
    # 10 kWh from the grid: 3.5 kWh in half of slot 1, 6.5 kWh in slot 3; slot 4 is too late.
    assert result.ev_kw == pytest.approx([0.0, 3.5, 0.0, 6.5, 0.0])


def test_a_connection_too_small_for_the_load_sheds_with_a_reason() -> None:
    document = scenario(home(load=[3.0], imp=[10.0], exp=[0.0], import_max_kw=2.0))
    _, result, _ = plan_one(document)
    assert result.status.kind == "relaxed"
    assert "1.000 kWh of load cannot be served" in str(result.status)
    assert result.shed_kw == pytest.approx([1.0])


def test_models_are_reused_for_the_same_configuration() -> None:
    planner = Planner()
    for price in (10.0, 20.0, 30.0):
        parsed = parse_scenario(
            scenario(home(load=[1.0] * 4, imp=[price] * 4, exp=[0.0] * 4, battery=battery()))
        )
        result = planner.plan_home(parsed, parsed.homes[0])
        assert result.cost_p == pytest.approx(4 * price)
    assert planner.cache.builds == 1


def test_a_solver_out_of_time_still_gives_every_home_an_honest_plan() -> None:
    from datetime import UTC, datetime
    from pathlib import Path

    from fractal.planner import load_scenario
    from fractal.planner.document import to_plan_document

    example = Path(__file__).parents[3] / "docs" / "examples" / "scenario-street.json"
    parsed = load_scenario(example.read_bytes())
    planner = Planner(time_limit_s=1e-9)
    for street_home in parsed.homes:
        result = planner.plan_home(parsed, street_home)
        assert result.status.kind == "relaxed"
        assert "solver gave no plan (Time limit reached)" in str(result.status)
        checked = replay(parsed, street_home, result)
        assert checked.violations == []
        assert result.cost_p == pytest.approx(checked.cost_p, abs=1e-6)
        document = to_plan_document(parsed, street_home, result, datetime(2026, 11, 22, tzinfo=UTC))
        assert document.node == street_home.id


def test_the_carbon_objective_moves_imports_to_clean_slots() -> None:
    # Same price all day; the grid is clean in slot 0 and dirty in slot 1.
    document = scenario(
        home(
            load=[0.0, 2.0],
            imp=[10.0, 10.0],
            exp=[0.0, 0.0],
            battery=battery(charge_efficiency=1.0, discharge_efficiency=1.0),
            carbon_g_per_kwh=[50.0, 400.0],
        ),
        objective={"mode": "carbon"},
    )
    parsed = parse_scenario(document)
    result = Planner().plan_home(parsed, parsed.homes[0])
    assert str(result.status) == "optimal"
    # Charge in the clean slot to serve the dirty one; money is the same either way.
    assert result.charge_kw[0] == pytest.approx(2.0)
    assert result.grid_kw[1] == pytest.approx(0.0, abs=1e-7)
    cost_only = Planner().plan_home(
        parse_scenario(document | {"objective": {"mode": "cost"}}), parsed.homes[0]
    )
    assert cost_only.charge_kw.sum() == pytest.approx(0.0, abs=1e-7)


def test_carbon_objectives_need_an_intensity_forecast() -> None:
    from fractal.planner import ScenarioError

    document = scenario(home(load=[1.0], imp=[10.0], exp=[0.0]), objective={"mode": "mix"})
    with pytest.raises(ScenarioError, match="carbon_g_per_kwh is needed for objective 'mix'"):
        parse_scenario(document)
