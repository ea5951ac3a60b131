"""Independent checks of planner results, written without the planner's code.

* `replay` walks a plan slot by slot against the scenario (plain Python, datetimes for the EV
  window) and lists every violated limit, and recomputes the cost in pence.
* `reference_cost` solves the same planning rules with scipy's ``linprog`` in a different
  formulation: variables interleaved per slot, the state of charge eliminated into cumulative
  sums, and hard limits instead of penalised slack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from fractal.planner import HomePlan
from fractal.planner.scenario import Home, Scenario
from scipy.optimize import linprog
from scipy.sparse import lil_matrix

TOL = 1e-6


@dataclass
class Replay:
    violations: list[str] = field(default_factory=list)
    cost_p: float = 0.0
    soc_kwh: list[float] = field(default_factory=list)
    ev_energy_kwh: float = 0.0
    tank_kwh: list[float] = field(default_factory=list)
    level_m: list[float] = field(default_factory=list)


def _replay_tank(
    scenario: Scenario, home: Home, heat: float, t: int, *, out: Replay, relaxed: bool
) -> None:
    tank = home.immersion
    if tank is None:
        return
    dt = scenario.step_seconds / 3600
    store = out.tank_kwh[-1] if out.tank_kwh else tank.store_kwh
    store = store * (1 - tank.loss_per_hour * dt) + (heat - tank.demand_kw[t]) * dt
    if not -TOL <= heat <= tank.power_kw + TOL:
        out.violations.append(f"slot {t}: heater at {heat} kW")
    if store > tank.tank_kwh + 1e-5:
        out.violations.append(f"slot {t}: tank over-full at {store} kWh")
    if store < tank.store_min_kwh - 1e-5:
        if not relaxed:
            out.violations.append(f"slot {t}: hot water short ({store} kWh in the tank)")
        store = tank.store_min_kwh  # the shortfall is met otherwise (relaxed plans only)
    out.tank_kwh.append(store)


def _replay_hydro(
    scenario: Scenario, home: Home, plan: HomePlan, t: int, *, out: Replay, relaxed: bool
) -> float:
    """Replays the river level; returns the turbine's output in kW."""
    hydro = home.hydro
    if hydro is None:
        return 0.0
    flow, spill = float(plan.device["flow"][t]), float(plan.device["spill"][t])
    previous = out.level_m[-1] if out.level_m else hydro.level_m
    level = previous + (hydro.inflow_m3s[t] - flow - spill) * scenario.step_seconds / (
        hydro.pond_area_m2
    )
    rate = abs(level - previous) / (scenario.step_seconds / 3600)
    problems = {
        f"turbine flow {flow}": not -TOL <= flow <= hydro.flow_max_m3s + TOL,
        f"negative spill {spill}": spill < -TOL,
        f"level {level} vs planned {plan.device['level'][t]}": abs(
            level - float(plan.device["level"][t])
        )
        > 1e-5,
        f"level changes at {rate} m/h": rate > hydro.rate_max_m_per_h + 1e-6,
        f"level {level} outside the licence band": not relaxed
        and not hydro.level_min_m - 1e-6 <= level <= hydro.level_max_m + 1e-6,
    }
    out.violations += [f"slot {t}: {what}" for what, broken in problems.items() if broken]
    out.level_m.append(level)
    return flow * hydro.kw_per_m3s


def plugged_fraction(scenario: Scenario, home: Home, slot: int) -> float:
    if home.ev is None:
        return 0.0
    start = scenario.start + timedelta(seconds=slot * scenario.step_seconds)
    end = start + timedelta(seconds=scenario.step_seconds)
    overlap = min(end, home.ev.departure) - max(start, home.ev.arrival)
    return max(overlap.total_seconds(), 0.0) / scenario.step_seconds


def replay(scenario: Scenario, home: Home, plan: HomePlan) -> Replay:
    """Feasibility of ``plan`` for ``home`` and its cost, checked one slot at a time."""
    out = Replay()
    dt = scenario.step_seconds / 3600
    battery, grid = home.battery, home.grid
    soc = battery.soc_kwh if battery else 0.0
    green = battery.exportable_kwh if battery else 0.0
    relaxed = plan.status.kind == "relaxed"

    def check(ok: bool, what: str, slot: int) -> None:
        if not ok:
            out.violations.append(f"slot {slot}: {what}")

    for t in range(scenario.slots):
        imp, exp = float(plan.import_kw[t]), float(plan.export_kw[t])
        ch, dis = float(plan.charge_kw[t]), float(plan.discharge_kw[t])
        pv, ev = float(plan.pv_used_kw[t]), float(plan.ev_kw[t])
        shed = float(plan.shed_kw[t])
        heat = float(plan.device["heat"][t]) if home.immersion else 0.0
        hydro_kw = _replay_hydro(scenario, home, plan, t, out=out, relaxed=relaxed)
        _replay_tank(scenario, home, heat, t, out=out, relaxed=relaxed)
        pv += hydro_kw  # from here on "pv" is all renewable generation
        check(-TOL <= imp <= grid.import_max_kw + TOL, f"import {imp}", t)
        check(-TOL <= exp <= grid.export_max_kw + TOL, f"export {exp}", t)
        check(min(imp, exp) <= TOL, f"imports {imp} and exports {exp} at once", t)
        used = float(plan.pv_used_kw[t])
        check(-TOL <= used <= home.pv_kw[t] + TOL, f"pv used {used} of {home.pv_kw[t]}", t)
        check(exp <= pv + dis + TOL, "exports imported energy", t)
        ev_max = home.ev.max_kw * plugged_fraction(scenario, home, t) if home.ev else 0.0
        check(-TOL <= ev <= ev_max + TOL, f"EV {ev} kW above {ev_max}", t)
        balance = pv + dis + imp + shed - home.load_kw[t] - ch - ev - exp - heat
        check(abs(balance) <= 1e-5, f"energy balance off by {balance}", t)
        check(relaxed or shed <= TOL, f"sheds {shed} kW in an unrelaxed plan", t)
        if battery:
            check(-TOL <= ch <= battery.charge_kw + TOL, f"charge {ch}", t)
            check(-TOL <= dis <= battery.discharge_kw + TOL, f"discharge {dis}", t)
            if min(battery.charge_kw, battery.discharge_kw) >= 1e-3:  # as the planner
                share = ch / battery.charge_kw + dis / battery.discharge_kw
                check(share <= 1 + 1e-6, f"charges and discharges beyond the slot ({share})", t)
            soc += (battery.charge_efficiency * ch - dis / battery.discharge_efficiency) * dt
            check(-1e-5 <= soc <= battery.capacity_kwh + 1e-5, f"SoC {soc} outside 0..capacity", t)
            in_band = battery.soc_min_kwh - 1e-5 <= soc <= battery.soc_max + 1e-5
            check(relaxed or in_band, f"SoC {soc} outside its band", t)
            check(abs(soc - float(plan.soc_kwh[t])) <= 1e-5, f"SoC {soc} vs {plan.soc_kwh[t]}", t)
            if not grid.export_stored_grid_energy:
                # Export beyond this slot's PV needs PV energy stored earlier ("green");
                # PV left over after export may be charged as green. Greedy keeps most green.
                surplus = pv - exp
                if surplus >= 0:
                    green += battery.charge_efficiency * min(ch, surplus) * dt
                else:
                    green += surplus / battery.discharge_efficiency * dt
                green = min(green, soc)
                check(green >= -1e-5, "exports energy bought from the grid", t)
        else:
            check(ch <= TOL and dis <= TOL, "battery power without a battery", t)
            check(exp <= pv + TOL, "exports more than PV without a battery", t)
        out.soc_kwh.append(soc)
        out.ev_energy_kwh += ev * (home.ev.efficiency if home.ev else 1.0) * dt
        cycle = battery.cycle_cost_p_per_kwh if battery else 0.0
        cost = imp * home.import_p_per_kwh[t] - exp * home.export_p_per_kwh[t] + cycle * dis
        out.cost_p += cost * dt
    if battery and not relaxed:
        check(soc >= battery.terminal_soc_min_kwh - 1e-5, f"terminal SoC {soc}", scenario.slots)
    if home.hydro and not relaxed and out.level_m[-1] < home.hydro.terminal_level - 1e-5:
        out.violations.append(f"end level {out.level_m[-1]} under {home.hydro.terminal_level}")
    if home.ev and not relaxed:
        short = home.ev.energy_kwh - out.ev_energy_kwh
        check(short <= 1e-5, f"EV short by {short} kWh", scenario.slots)
    return out


_VARS = (
    "imp",
    "exp",
    "ch",
    "dis",
    "pv",
    "ev",
    "chpv",
    "disg",
    "heat",
    "store",
    "flow",
    "spill",
    "level",
)


def reference_cost(scenario: Scenario, home: Home) -> float:
    """The optimum of the planning rules by ``linprog`` (HiGHS inside scipy), hard limits.

    Raises ``AssertionError`` if the reference finds the scenario infeasible.
    """
    n, dt, k = scenario.slots, scenario.step_seconds / 3600, len(_VARS)
    battery, grid = home.battery, home.grid

    def var(name: str, t: int) -> int:
        return t * k + _VARS.index(name)

    cost = np.zeros(n * k)
    bounds: list[tuple[float, float]] = []
    green_rule = battery is not None and not grid.export_stored_grid_energy
    for t in range(n):
        cost[var("imp", t)] = home.import_p_per_kwh[t] * dt
        cost[var("exp", t)] = -home.export_p_per_kwh[t] * dt
        cost[var("dis", t)] = (battery.cycle_cost_p_per_kwh if battery else 0.0) * dt
        ev_max = home.ev.max_kw * plugged_fraction(scenario, home, t) if home.ev else 0.0
        bounds += [
            (0, grid.import_max_kw),
            (0, grid.export_max_kw),
            (0, battery.charge_kw if battery else 0),
            (0, battery.discharge_kw if battery else 0),
            (0, home.pv_kw[t]),
            (0, ev_max),
            (0, battery.charge_kw if green_rule and battery else 0),
            (0, battery.discharge_kw if green_rule and battery else 0),
            *_device_bounds(home, t, n),
        ]
    eq: list[dict[int, float]] = []
    ub: list[dict[int, float]] = []
    eq_rhs: list[float] = []
    ub_rhs: list[float] = []

    hydro_kw = home.hydro.kw_per_m3s if home.hydro else 0.0
    for t in range(n):
        sources = {var(name, t): 1.0 for name in ("pv", "dis", "imp")} | {var("flow", t): hydro_kw}
        eq.append(sources | {var(name, t): -1.0 for name in ("ch", "ev", "exp", "heat")})
        eq_rhs.append(home.load_kw[t])
    _device_rows(scenario, home, var, eq=eq, eq_rhs=eq_rhs, ub=ub, ub_rhs=ub_rhs)
    if battery:
        eta_c, eta_d = battery.charge_efficiency, battery.discharge_efficiency
        top = min(battery.soc_max, battery.capacity_kwh)
        for t in range(n):
            stored = {}
            green = {}
            for s in range(t + 1):
                stored[var("ch", s)] = eta_c * dt
                stored[var("dis", s)] = -dt / eta_d
                green[var("chpv", s)] = eta_c * dt
                green[var("disg", s)] = -dt / eta_d
            # soc0 + stored within [soc_min, soc_max]
            ub.append(stored)
            ub_rhs.append(top - battery.soc_kwh)
            ub.append({i: -v for i, v in stored.items()})
            floor = (
                battery.soc_min_kwh
                if t < n - 1
                else max(battery.soc_min_kwh, battery.terminal_soc_min_kwh)
            )
            ub_rhs.append(battery.soc_kwh - floor)
            if min(battery.charge_kw, battery.discharge_kw) >= 1e-3:  # as the planner
                ub.append(
                    {var("ch", t): 1 / battery.charge_kw, var("dis", t): 1 / battery.discharge_kw}
                )
                ub_rhs.append(1.0)
            if green_rule:
                ub.append({i: -v for i, v in green.items()})  # green stock >= 0
                ub_rhs.append(battery.exportable_kwh)
                combined = dict(green)
                for i, v in stored.items():
                    combined[i] = combined.get(i, 0.0) - v  # green stock <= soc
                ub.append(combined)
                ub_rhs.append(battery.soc_kwh - battery.exportable_kwh)
                ub.append({var("chpv", t): 1, var("ch", t): -1})
                ub_rhs.append(0.0)
                ub.append({var("chpv", t): 1, var("pv", t): -1, var("flow", t): -hydro_kw})
                ub_rhs.append(0.0)
                ub.append({var("disg", t): 1, var("dis", t): -1})
                ub_rhs.append(0.0)
    for t in range(n):
        renewable = {var("pv", t): -1.0, var("flow", t): -hydro_kw}
        if green_rule:
            ub.append({var("exp", t): 1, var("chpv", t): 1, var("disg", t): -1} | renewable)
        else:
            ub.append({var("exp", t): 1, var("dis", t): -1} | renewable)
        ub_rhs.append(0.0)
    if home.ev:
        ub.append({var("ev", t): -home.ev.efficiency * dt for t in range(n)})
        ub_rhs.append(-home.ev.energy_kwh)
    result = linprog(
        cost,
        A_ub=_matrix(ub, n * k),
        b_ub=ub_rhs,
        A_eq=_matrix(eq, n * k),
        b_eq=eq_rhs,
        bounds=bounds,
        method="highs-ipm",
    )
    assert result.status == 0, f"reference found no optimum: {result.message}"
    return float(result.fun)


def _device_bounds(home: Home, t: int, n: int) -> list[tuple[float, float]]:
    """Bounds of heat, store, flow, spill and level in slot ``t`` (zero when absent)."""
    tank, hydro = home.immersion, home.hydro
    heat = (0.0, tank.power_kw) if tank else (0.0, 0.0)
    store = (tank.store_min_kwh, tank.tank_kwh) if tank else (0.0, 0.0)
    if hydro is None:
        return [heat, store, (0.0, 0.0), (0.0, 0.0), (0.0, 0.0)]
    floor = hydro.level_min_m if t < n - 1 else max(hydro.level_min_m, hydro.terminal_level)
    return [heat, store, (0.0, hydro.flow_max_m3s), (0.0, None), (floor, hydro.level_max_m)]


def _device_rows(
    scenario: Scenario,
    home: Home,
    var: Callable[[str, int], int],
    *,
    eq: list[dict[int, float]],
    eq_rhs: list[float],
    ub: list[dict[int, float]],
    ub_rhs: list[float],
) -> None:
    """Tank and river states as explicit variables with equality rows (hard limits)."""
    dt = scenario.step_seconds / 3600
    if home.immersion:
        tank = home.immersion
        keep = 1 - tank.loss_per_hour * dt
        for t in range(scenario.slots):
            row = {var("store", t): 1.0, var("heat", t): -dt}
            if t:
                row[var("store", t - 1)] = -keep
            eq.append(row)
            eq_rhs.append(-tank.demand_kw[t] * dt + (0.0 if t else keep * tank.store_kwh))
    if home.hydro:
        hydro = home.hydro
        k = scenario.step_seconds / hydro.pond_area_m2
        for t in range(scenario.slots):
            change = {var("level", t): 1.0} | ({var("level", t - 1): -1.0} if t else {})
            start = 0.0 if t else hydro.level_m
            eq.append(change | {var("flow", t): k, var("spill", t): k})
            eq_rhs.append(hydro.inflow_m3s[t] * k + start)
            ub.append(change)
            ub_rhs.append(hydro.rate_max_m_per_h * dt + start)
            ub.append({i: -v for i, v in change.items()})
            ub_rhs.append(hydro.rate_max_m_per_h * dt - start)


def _matrix(rows: list[dict[int, float]], columns: int) -> lil_matrix:
    matrix = lil_matrix((len(rows), columns))
    for r, terms in enumerate(rows):
        for c, v in terms.items():
            matrix[r, c] = v
    return matrix
