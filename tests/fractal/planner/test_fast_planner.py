"""The vectorised battery + PV solver: the HiGHS optimum on thousands of random homes.

Each fast plan is replayed by the independent checker (feasibility, cost) and costed against the
HiGHS plan of the same home; homes outside its scope, or infeasible without slack, must come
from HiGHS under ``auto``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fractal.planner import Planner, parse_scenario
from fractal.planner.parallel import PlannerPool, plan_homes
from fractal.planner.scenario import Scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.planner_check import reference_cost, replay
from tests.support.planner_scenarios import battery, home, scenario

COST_TOLERANCE = 1e-6  # relative, plus the same in pence: rounding, not a method gap


def _series(values: np.ndarray[Any, Any]) -> list[float]:
    return [round(float(value), 3) for value in values]


def _random_home(rng: np.random.Generator, index: int, slots: int) -> dict[str, Any]:
    """Random load, PV and prices (negative export and import included), tight limits too."""
    hours = np.arange(slots) % 24
    load = rng.uniform(0, 4, slots) * (rng.random(slots) > 0.1)
    pv = np.where((hours > 6) & (hours < 18), rng.uniform(0, 6), 0) * rng.uniform(0, 1, slots)
    imp = rng.uniform(0, 60, slots)
    if rng.random() < 0.2:  # Agile-like negative import: wasting energy may pay (HiGHS then)
        imp -= rng.uniform(0, 8) * (rng.random(slots) < 0.2)
    exp = imp - rng.uniform(0, 30, slots) * (rng.random(slots) > 0.1)  # some equal to import
    capacity = 0.0 if rng.random() < 0.1 else rng.uniform(0.5, 15)
    soc_min = rng.uniform(0, 0.3) * capacity
    soc_max = soc_min + rng.uniform(0, 1) * (capacity - soc_min)
    soc = soc_min + rng.uniform(0, 1) * (soc_max - soc_min)
    # Now and then more than the battery can reach: HiGHS then relaxes the terminal SoC.
    terminal = min(rng.uniform(0, 1.1) * soc_max, capacity)
    return home(
        f"home-{index}",
        load=_series(load),
        pv=_series(pv),
        imp=_series(imp),
        exp=_series(exp),
        # Now and then too small for the load: a plan needs slack (HiGHS) in some homes.
        import_max_kw=float(rng.choice([rng.uniform(1, 4), 30.0])),
        export_max_kw=float(rng.choice([0.0, rng.uniform(0, 5), 10.0])),
        battery=battery(
            exportable_kwh=rng.uniform(0, 1) * soc,
            capacity_kwh=capacity,
            soc_kwh=soc,
            soc_min_kwh=soc_min,
            soc_max_kwh=soc_max,
            charge_kw=rng.uniform(0, 6),
            discharge_kw=rng.uniform(0, 6),
            charge_efficiency=rng.uniform(0.8, 1.0),
            discharge_efficiency=rng.uniform(0.8, 1.0),
            cycle_cost_p_per_kwh=rng.choice([0.0, rng.uniform(0, 4)]),
            terminal_soc_min_kwh=terminal,
        ),
    ) | {"grid_export_stored": bool(rng.random() < 0.5)}


def _fleet(seed: int, homes: int, slots: int, step_seconds: int) -> Scenario:
    rng = np.random.default_rng(seed)
    documents = []
    for index in range(homes):
        document = _random_home(rng, index, slots)
        document["grid"]["export_stored_grid_energy"] = document.pop("grid_export_stored")
        documents.append(document)
    return parse_scenario(scenario(*documents, step_seconds=step_seconds))


@pytest.mark.parametrize(
    ("seed", "slots", "step_seconds"), [(1, 96, 1800), (2, 48, 3600), (3, 24, 900), (4, 7, 1800)]
)
def test_fast_plans_cost_the_highs_optimum(seed: int, slots: int, step_seconds: int) -> None:
    fleet = _fleet(seed, 600, slots, step_seconds)
    fast_plans = Planner(method="auto").plan_scenario(fleet)
    highs_plans = Planner(method="highs").plan_scenario(fleet)
    used_fast = 0
    for home_, ours, optimum in zip(fleet.homes, fast_plans, highs_plans, strict=True):
        if ours.solver == "highs":
            continue
        used_fast += 1
        assert str(optimum.status) == "optimal", home_.id
        assert str(ours.status) == "optimal"
        checked = replay(fleet, home_, ours)
        assert checked.violations == [], home_.id
        assert ours.cost_p == pytest.approx(checked.cost_p, rel=1e-9, abs=1e-9)
        tolerance = COST_TOLERANCE * (1 + abs(optimum.cost_p))
        assert abs(ours.cost_p - optimum.cost_p) <= tolerance, home_.id
    # Most homes are in scope; the rest (slack needed, wasteful prices, battery energy
    # exported where only PV may be) went to HiGHS.
    assert used_fast >= 200


def test_homes_the_fast_solver_cannot_prove_are_planned_by_highs() -> None:
    fleet = _fleet(5, 400, 48, 1800)
    auto = Planner(method="auto").plan_scenario(fleet)
    reference = Planner(method="highs").plan_scenario(fleet)
    for ours, optimum in zip(auto, reference, strict=True):
        if ours.solver == "highs":
            assert ours.cost_p == pytest.approx(optimum.cost_p, rel=1e-9, abs=1e-9)
            assert ours.status == optimum.status
        else:
            assert optimum.status.kind == "optimal"
    by_solver = {
        (home_.grid.export_stored_grid_energy, plan.solver, plan.status.kind)
        for home_, plan in zip(fleet.homes, auto, strict=True)
    }
    # Both export rules planned fast; slack (a relaxed plan) always from HiGHS.
    assert {(True, "fast", "optimal"), (False, "fast", "optimal")} <= by_solver
    assert any(kind == "relaxed" and solver == "highs" for _, solver, kind in by_solver)
    negative = [
        plan.solver
        for home_, plan in zip(fleet.homes, auto, strict=True)
        if min(home_.import_p_per_kwh) < 0
        and home_.battery
        and home_.battery.cycle_cost_p_per_kwh == 0
    ]
    assert "highs" in negative  # wasting energy in the battery pays: no certificate


def _ev_home(slots: int = 4) -> dict[str, Any]:
    return home(
        "ev",
        load=[1.0] * slots,
        imp=[10.0] * slots,
        exp=[5.0] * slots,
        battery=battery(),
        ev={
            "arrival": "2026-11-22T00:00:00Z",
            "departure": "2026-11-22T03:00:00Z",
            "energy_kwh": 5.0,
            "max_kw": 7.0,
        },
    )


def test_method_switch() -> None:
    plain = home("plain", load=[1.0] * 4, imp=[10.0, 30, 5, 20], exp=[4.0] * 4, battery=battery())
    fleet = parse_scenario(scenario(plain, _ev_home()))
    plans = Planner(method="fast").plan_homes(fleet, fleet.homes[:1])
    assert plans[0].solver == "fast"
    assert Planner(method="fast").plan_home(fleet, fleet.homes[0]).solver == "fast"
    with pytest.raises(ValueError, match="home ev: the fast planner does not cover EV"):
        Planner(method="fast").plan_scenario(fleet)
    with pytest.raises(ValueError, match="planner method 'quick'"):
        Planner(method="quick")  # type: ignore[arg-type]
    # One covered home: auto keeps to HiGHS (numpy's per-call cost would lose) ...
    assert {plan.solver for plan in Planner(method="auto").plan_scenario(fleet)} == {"highs"}
    # ... many: the covered go fast, the EV home to HiGHS.
    many = parse_scenario(
        scenario(*[plain | {"id": f"p{i}"} for i in range(20)], _ev_home(), step_seconds=3600)
    )
    solvers = [plan.solver for plan in Planner(method="auto").plan_scenario(many)]
    assert solvers == ["fast"] * 20 + ["highs"]


def test_price_signal_reaches_the_fast_solver() -> None:
    """A grid price adder (fleet coordination) is planned exactly as HiGHS plans it."""
    fleet = _fleet(6, 40, 24, 3600)
    adders: list[Any] = [np.linspace(-3, 8, 24) for _ in fleet.homes]
    fast_plans = Planner(method="auto").plan_homes(fleet, fleet.homes, adders)
    highs_plans = Planner(method="highs").plan_homes(fleet, fleet.homes, adders)
    assert any(plan.solver == "fast" for plan in fast_plans)
    for ours, optimum in zip(fast_plans, highs_plans, strict=True):
        assert ours.cost_p == pytest.approx(optimum.cost_p, rel=1e-6, abs=1e-6)


def _number(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False).map(lambda value: round(value, 6))


@st.composite
def _covered_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """Battery + PV homes whose limits can be met, import never below zero."""
    slots = draw(st.integers(1, 12))
    series = st.lists(_number(0.0, 6.0), min_size=slots, max_size=slots)
    load, pv = draw(series), draw(series)
    imp = draw(st.lists(_number(0.0, 60.0), min_size=slots, max_size=slots))
    margin = draw(st.lists(_number(0.0, 30.0), min_size=slots, max_size=slots))
    capacity = draw(_number(0.0, 15.0))
    soc_min = draw(_number(0.0, 1.0)) * capacity
    soc_max = soc_min + draw(_number(0.0, 1.0)) * (capacity - soc_min)
    soc = soc_min + draw(_number(0.0, 1.0)) * (soc_max - soc_min)
    charge_kw = draw(_number(0.0, 6.0))
    document = home(
        "random",
        load=load,
        pv=pv,
        imp=imp,
        exp=[p - m for p, m in zip(imp, margin, strict=True)],
        import_max_kw=max(load) + charge_kw + 1.0,
        export_max_kw=draw(_number(0.0, 6.0)),
        battery=battery(
            capacity_kwh=capacity,
            soc_kwh=soc,
            soc_min_kwh=soc_min,
            soc_max_kwh=soc_max,
            charge_kw=charge_kw,
            discharge_kw=draw(_number(0.0, 6.0)),
            charge_efficiency=draw(_number(0.7, 1.0)),
            discharge_efficiency=draw(_number(0.7, 1.0)),
            cycle_cost_p_per_kwh=draw(_number(0.0, 5.0)),
            terminal_soc_min_kwh=soc_min + draw(_number(0.0, 1.0)) * (soc - soc_min),
        ),
    )
    return scenario(document, step_seconds=draw(st.sampled_from([900, 1800, 3600])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_covered_scenarios())
def test_random_fast_plans_match_an_independent_lp(document: dict[str, Any]) -> None:
    parsed = parse_scenario(document)
    home_ = parsed.homes[0]
    plan = Planner(method="fast").plan_home(parsed, home_)
    optimum = reference_cost(parsed, home_)
    if plan.solver == "fast":  # a failed certificate would have gone to HiGHS
        assert replay(parsed, home_, plan).violations == []
    assert plan.cost_p == pytest.approx(optimum, rel=1e-6, abs=1e-5)


def test_worker_processes_plan_fast_too() -> None:
    fleet = _fleet(7, 200, 24, 3600)  # 25 homes per chunk: enough for a batch
    spread = plan_homes(fleet, workers=2, method="auto")
    here = Planner(method="highs").plan_scenario(fleet)
    assert "fast" in {plan.solver for plan in spread}
    for ours, optimum in zip(spread, here, strict=True):
        assert ours.cost_p == pytest.approx(optimum.cost_p, rel=1e-6, abs=1e-6)


def test_a_pool_of_workers_plans_fleet_after_fleet() -> None:
    """Covered homes travel as arrays, the EV home as a home to HiGHS; workers stay up."""
    first, second = _fleet(8, 120, 24, 3600), _fleet(9, 120, 24, 3600)
    with_ev = parse_scenario(
        scenario(
            *[home_.model_dump(mode="json") for home_ in first.homes],
            _ev_home(24),
            step_seconds=3600,
        )
    )
    with PlannerPool(2, method="auto") as pool:
        for fleet in (with_ev, second):
            spread = pool.plan(fleet)
            here = Planner(method="highs").plan_scenario(fleet)
            assert [plan.home_id for plan in spread] == [home_.id for home_ in fleet.homes]
            assert {"fast", "highs"} <= {plan.solver for plan in spread}
            for ours, optimum in zip(spread, here, strict=True):
                assert ours.cost_p == pytest.approx(optimum.cost_p, rel=1e-6, abs=1e-6)
                assert ours.status.kind == optimum.status.kind
