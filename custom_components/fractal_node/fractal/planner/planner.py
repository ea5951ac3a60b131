"""Plan each home of a scenario: data in, trajectories, cost and an honest status out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

import numpy as np

from . import fast
from .model import (
    SLACK_TOLERANCE_KWH,
    Configuration,
    HomeData,
    HydroData,
    HydroShape,
    ImmersionData,
    ModelCache,
    Solution,
    Vector,
)
from .scenario import Battery, Ev, Home, Immersion, Objective, Scenario

_NO_BATTERY = Battery(capacity_kwh=0, soc_kwh=0, charge_kw=0, discharge_kw=0)

Method = Literal["auto", "highs", "fast"]
"""``highs``: the LP per home. ``fast``: the exact vectorised solver of `fast` (battery + PV
homes only; others are an error). ``auto``: ``fast`` for the homes it covers when planning many
homes at once, HiGHS for the rest (and for a single home, where numpy's per-call cost loses)."""
# Homes per vectorised batch: big enough to amortise numpy's per-call cost, small enough for
# the CPU cache.
FAST_BATCH = 1024
# Fewer covered homes than this in one call: HiGHS is quicker (``auto``).
FAST_MIN_HOMES = 16


@dataclass(frozen=True)
class PlanStatus:
    """``optimal``, ``feasible`` (a plan, not proven optimal) or ``relaxed`` (soft limits used)."""

    kind: str
    reasons: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.kind}: {'; '.join(self.reasons)}" if self.reasons else self.kind


@dataclass(frozen=True)
class HomePlan:
    """A home's planned flows per slot (kW averages, kWh at slot ends) and its cost."""

    home_id: str
    status: PlanStatus
    cost_p: float
    import_kw: Vector
    export_kw: Vector
    charge_kw: Vector
    discharge_kw: Vector
    soc_kwh: Vector
    pv_used_kw: Vector
    ev_kw: Vector
    shed_kw: Vector
    solve_seconds: float
    iterations: int
    device: dict[str, Vector] = field(default_factory=dict)
    """Immersion (``heat``, ``store``) and hydro (``flow``, ``spill``, ``level``) per slot."""
    solver: str = "highs"
    """``highs`` or ``fast`` (the vectorised battery + PV solver)."""

    @property
    def battery_kw(self) -> Vector:
        """Net battery power, > 0 charging."""
        return self.charge_kw - self.discharge_kw

    @property
    def grid_kw(self) -> Vector:
        """Net grid power, > 0 importing."""
        return self.import_kw - self.export_kw

    def trajectories(self, pv_forecast_kw: Sequence[float]) -> dict[str, list[float]]:
        """Per-slot trajectories by name; ``pv_curtailed_kw`` needs the forecast."""
        named = {
            "grid_kw": self.grid_kw,
            "battery_kw": self.battery_kw,
            "soc_kwh": self.soc_kwh,
            "pv_used_kw": self.pv_used_kw,
            "pv_curtailed_kw": np.clip(np.asarray(pv_forecast_kw) - self.pv_used_kw, 0.0, None),
            "ev_kw": self.ev_kw,
        }
        if self.shed_kw.any():
            named["load_shed_kw"] = self.shed_kw
        device_names = {
            "heat": "immersion_kw",
            "store": "tank_kwh",
            "flow": "hydro_flow_m3s",
            "spill": "hydro_spill_m3s",
            "level": "hydro_level_m",
        }
        for name, label in device_names.items():
            if name in self.device:
                named[label] = self.device[name]
        return {name: [round(float(v), 6) for v in values] for name, values in named.items()}


def plan_cost_p(home: Home, step_hours: float, plan: HomePlan) -> float:
    """Sum over slots of import x price - export x export price, plus the cycle cost."""
    battery = home.battery or _NO_BATTERY
    money = np.dot(plan.import_kw, home.import_p_per_kwh) - np.dot(
        plan.export_kw, home.export_p_per_kwh
    )
    wear = battery.cycle_cost_p_per_kwh * float(plan.discharge_kw.sum())
    return float((money + wear) * step_hours)


class Planner:
    """Plans homes, keeping one warm HiGHS model per device configuration."""

    def __init__(self, time_limit_s: float = 5.0, method: Method = "highs") -> None:
        if method not in get_args(Method):
            raise ValueError(f"planner method {method!r}: use one of {get_args(Method)}")
        self.cache = ModelCache(time_limit_s)
        self.method: Method = method

    def plan_scenario(self, scenario: Scenario) -> list[HomePlan]:
        return self.plan_homes(scenario, scenario.homes)

    def plan_homes(
        self,
        scenario: Scenario,
        homes: Sequence[Home],
        grid_price_adders: Sequence[Vector | None] | None = None,
    ) -> list[HomePlan]:
        """Plan several homes; with ``fast`` or ``auto`` the covered ones go in numpy batches.

        A home the fast solver leaves (infeasible without slack, or its certificate failed)
        is planned by HiGHS.
        """
        adders = list(grid_price_adders or [None] * len(homes))
        plans: list[HomePlan | None] = [None] * len(homes)
        if self.method != "highs":
            covered = self.covered(scenario, homes)
            if self.method == "fast" or len(covered) >= FAST_MIN_HOMES:
                for first in range(0, len(covered), FAST_BATCH):
                    chunk = covered[first : first + FAST_BATCH]
                    chunk_plans: list[HomePlan | None] = [None] * len(chunk)
                    self._plan_fast(
                        scenario,
                        [homes[i] for i in chunk],
                        [adders[i] for i in chunk],
                        chunk_plans,
                    )
                    for i, plan in zip(chunk, chunk_plans, strict=True):
                        plans[i] = plan
        return [
            plan or self._plan_highs(scenario, home, adder)
            for plan, home, adder in zip(plans, homes, adders, strict=True)
        ]

    def plan_home(
        self,
        scenario: Scenario,
        home: Home,
        grid_price_adder: Vector | None = None,
        grid_cap_kw: Vector | None = None,
    ) -> HomePlan:
        """Plan one home, optionally with fleet coordination signals.

        ``grid_price_adder`` (p/kWh per slot) raises both the import cost and the export value,
        so it prices net grid power without making exporting beat importing. ``grid_cap_kw``
        (per slot, ``inf`` for none) is a soft cap on net import, its excess penalised above any
        price. ``cost_p`` always uses the true prices.
        """
        if self.method == "fast" and grid_cap_kw is None:
            return self.plan_homes(scenario, [home], [grid_price_adder])[0]
        return self._plan_highs(scenario, home, grid_price_adder, grid_cap_kw)

    def covered(self, scenario: Scenario, homes: Sequence[Home]) -> list[int]:
        """The homes the fast solver covers; with ``fast``, no other may be asked for."""
        covered = []
        for index, home in enumerate(homes):
            reason = fast.applies(configuration(scenario, home))
            if reason is None:
                covered.append(index)
            elif self.method == "fast":
                raise ValueError(f"home {home.id}: the fast planner does not cover {reason}")
        return covered

    def _plan_fast(
        self,
        scenario: Scenario,
        homes: Sequence[Home],
        adders: Sequence[Vector | None],
        plans: list[HomePlan | None],
    ) -> None:
        """Plan ``homes`` (all covered) in one numpy batch; proven plans go into ``plans``."""
        started = time.perf_counter()
        batch = fast_batch(scenario, homes, adders)
        result = fast.solve(batch)
        seconds = (time.perf_counter() - started) / len(homes)
        plans[:] = fast_plans(scenario, homes, batch, result, seconds)

    def _plan_highs(
        self,
        scenario: Scenario,
        home: Home,
        grid_price_adder: Vector | None = None,
        grid_cap_kw: Vector | None = None,
    ) -> HomePlan:
        config = replace(configuration(scenario, home), has_grid_cap=grid_cap_kw is not None)
        data = replace(home_data(scenario, home, grid_price_adder), grid_cap_kw=grid_cap_kw)
        solution = self.cache.model(config).solve(data)
        if not solution.solved:
            return _fallback(scenario, home, data, solution)
        return _to_plan(scenario, home, solution, _status(scenario, home, solution))


def fast_plans(
    scenario: Scenario,
    homes: Sequence[Home],
    batch: fast.Batch,
    result: fast.Result,
    seconds_per_home: float,
) -> list[HomePlan | None]:
    """The fast solver's plans for ``homes``: ``None`` where it has no proof (HiGHS's turn)."""
    import_p = np.array([home.import_p_per_kwh for home in homes], dtype=np.float64)
    export_p = np.array([home.export_p_per_kwh for home in homes], dtype=np.float64)
    cost = (
        (result.imp * import_p - result.exp * export_p).sum(axis=1)
        + batch.cycle * result.dis.sum(axis=1)
    ) * scenario.step_hours
    zeros = np.zeros(scenario.slots)
    return [
        HomePlan(
            home_id=home.id,
            status=PlanStatus("optimal"),
            cost_p=float(cost[i]),
            import_kw=result.imp[i],
            export_kw=result.exp[i],
            charge_kw=result.ch[i],
            discharge_kw=result.dis[i],
            soc_kwh=result.soc[i],
            pv_used_kw=result.pv[i],
            ev_kw=zeros,
            shed_kw=zeros,
            solve_seconds=seconds_per_home,
            iterations=0,
            solver="fast",
        )
        if result.certified[i]
        else None
        for i, home in enumerate(homes)
    ]


def fast_batch(
    scenario: Scenario, homes: Sequence[Home], adders: Sequence[Vector | None]
) -> fast.Batch:
    """The fast solver's arrays for ``homes``, built a field at a time (not a home at a time)."""

    def series(values: list[Sequence[float]]) -> Vector:
        return np.array(values, dtype=np.float64).reshape(len(homes), scenario.slots)

    def scalar(values: list[float]) -> Vector:
        return np.array(values, dtype=np.float64)

    batteries = [home.battery or _NO_BATTERY for home in homes]
    if scenario.objective.mode == "cost":
        imp = series([home.import_p_per_kwh for home in homes])
        exp = series([home.export_p_per_kwh for home in homes])
    else:
        weights = [objective_weights(scenario.objective, home) for home in homes]
        imp, exp = np.stack([w[0] for w in weights]), np.stack([w[1] for w in weights])
    for i, adder in enumerate(adders):
        if adder is not None:
            imp[i] += adder
            exp[i] += adder
    soc = scalar([b.soc_kwh for b in batteries])
    soc_min = scalar([b.soc_min_kwh for b in batteries])
    return fast.Batch(
        dt=scenario.step_hours,
        load=series([home.load_kw for home in homes]),
        pv=series([home.pv_kw for home in homes]),
        imp_price=imp,
        exp_price=exp,
        import_max=scalar([home.grid.import_max_kw for home in homes]),
        export_max=scalar([home.grid.export_max_kw for home in homes]),
        charge_kw=scalar([b.charge_kw for b in batteries]),
        discharge_kw=scalar([b.discharge_kw for b in batteries]),
        eta_c=scalar([b.charge_efficiency for b in batteries]),
        eta_d=scalar([b.discharge_efficiency for b in batteries]),
        cycle=scalar([b.cycle_cost_p_per_kwh for b in batteries]),
        soc0=soc,
        soc_min=soc_min,
        soc_max=scalar([b.soc_max for b in batteries]),
        terminal=np.maximum(scalar([b.terminal_soc_min_kwh for b in batteries]), soc_min),
        pv_only_export=np.array([not home.grid.export_stored_grid_energy for home in homes]),
        green0=np.minimum(scalar([b.exportable_kwh for b in batteries]), soc),
    )


def configuration(scenario: Scenario, home: Home) -> Configuration:
    battery, ev = home.battery or _NO_BATTERY, home.ev
    return Configuration(
        slots=scenario.slots,
        step_hours=scenario.step_hours,
        charge_efficiency=battery.charge_efficiency,
        discharge_efficiency=battery.discharge_efficiency,
        charge_kw=battery.charge_kw,
        discharge_kw=battery.discharge_kw,
        has_ev=ev is not None,
        ev_efficiency=ev.efficiency if ev else 1.0,
        export_stored_grid_energy=home.grid.export_stored_grid_energy,
        soft_soc_band=not battery.soc_min_kwh <= battery.soc_kwh <= battery.soc_max,
        immersion_loss_per_hour=home.immersion.loss_per_hour if home.immersion else None,
        hydro=HydroShape(
            kw_per_m3s=home.hydro.kw_per_m3s,
            metres_per_m3s_slot=scenario.step_seconds / home.hydro.pond_area_m2,
        )
        if home.hydro
        else None,
    )


def home_data(scenario: Scenario, home: Home, grid_price_adder: Vector | None = None) -> HomeData:
    battery = home.battery or _NO_BATTERY
    import_cost, export_value = objective_weights(scenario.objective, home)
    if grid_price_adder is not None:
        import_cost, export_value = import_cost + grid_price_adder, export_value + grid_price_adder
    return HomeData(
        pv_kw=np.asarray(home.pv_kw, dtype=np.float64),
        load_kw=np.asarray(home.load_kw, dtype=np.float64),
        import_cost=import_cost,
        export_value=export_value,
        import_max_kw=home.grid.import_max_kw,
        export_max_kw=home.grid.export_max_kw,
        capacity_kwh=battery.capacity_kwh,
        soc_kwh=battery.soc_kwh,
        exportable_kwh=battery.exportable_kwh,
        soc_min_kwh=battery.soc_min_kwh,
        soc_max_kwh=battery.soc_max,
        terminal_soc_min_kwh=battery.terminal_soc_min_kwh,
        cycle_cost_p_per_kwh=battery.cycle_cost_p_per_kwh,
        ev_max_kw=ev_window_kw(scenario, home.ev),
        ev_energy_kwh=home.ev.energy_kwh if home.ev else 0.0,
        immersion=_immersion_data(home),
        hydro=_hydro_data(home),
    )


def _immersion_data(home: Home) -> ImmersionData | None:
    tank = home.immersion
    if tank is None:
        return None
    return ImmersionData(
        power_kw=tank.power_kw,
        tank_kwh=tank.tank_kwh,
        store_kwh=tank.store_kwh,
        store_min_kwh=tank.store_min_kwh,
        demand_kw=np.asarray(tank.demand_kw, dtype=np.float64),
    )


def _hydro_data(home: Home) -> HydroData | None:
    hydro = home.hydro
    if hydro is None:
        return None
    return HydroData(
        inflow_m3s=np.asarray(hydro.inflow_m3s, dtype=np.float64),
        flow_max_m3s=hydro.flow_max_m3s,
        level_m=hydro.level_m,
        level_min_m=hydro.level_min_m,
        level_max_m=hydro.level_max_m,
        rate_max_m_per_h=hydro.rate_max_m_per_h,
        terminal_level_min_m=hydro.terminal_level,
    )


def objective_weights(objective: Objective, home: Home) -> tuple[Vector, Vector]:
    """Per-kWh weights of import and export: pence, plus carbon where asked.

    Exported energy is credited with the grid's carbon intensity (it displaces grid supply).
    In ``carbon`` mode money only breaks ties (a millionth of a gram per penny).
    """
    imp = np.asarray(home.import_p_per_kwh, dtype=np.float64)
    exp = np.asarray(home.export_p_per_kwh, dtype=np.float64)
    if objective.mode == "cost" or home.carbon_g_per_kwh is None:
        return imp, exp
    carbon = np.asarray(home.carbon_g_per_kwh, dtype=np.float64)
    if objective.mode == "mix":
        weight = objective.carbon_p_per_kg / 1000
        return imp + weight * carbon, exp + weight * carbon
    return carbon + 1e-6 * imp, carbon + 1e-6 * exp


def ev_window_kw(scenario: Scenario, ev: Ev | None) -> Vector:
    """Maximum EV power per slot: the charger's maximum times the plugged-in share of the slot."""
    slots = scenario.slots
    if ev is None:
        return np.zeros(slots)
    start = scenario.start.timestamp() + np.arange(slots) * scenario.step_seconds
    end = start + scenario.step_seconds
    plugged = np.clip(
        np.minimum(end, ev.departure.timestamp()) - np.maximum(start, ev.arrival.timestamp()),
        0.0,
        None,
    )
    return np.asarray(ev.max_kw * plugged / scenario.step_seconds, dtype=np.float64)


def _status(scenario: Scenario, home: Home, solution: Solution) -> PlanStatus:
    dt = scenario.step_hours
    relaxed: list[str] = []
    shed = float(solution.shed.sum() * dt)
    if shed > SLACK_TOLERANCE_KWH:
        relaxed.append(f"{shed:.3f} kWh of load cannot be served within the import limit")
    outside = int(((solution.under + solution.over) > SLACK_TOLERANCE_KWH).sum())
    if outside:
        relaxed.append(f"SoC outside its band for {outside} slot(s) (start outside the band)")
    if solution.ev_short_kwh > SLACK_TOLERANCE_KWH:
        relaxed.append(f"EV {solution.ev_short_kwh:.3f} kWh short of its target by departure")
    if solution.terminal_short_kwh > SLACK_TOLERANCE_KWH:
        relaxed.append(f"terminal SoC {solution.terminal_short_kwh:.3f} kWh short")
    relaxed += _device_relaxations(solution, dt)
    if relaxed:
        return PlanStatus("relaxed", tuple(relaxed))
    reasons: list[str] = []
    if solution.solver_status != "Optimal":
        reasons.append(f"solver stopped: {solution.solver_status}")
    if solution.directions_fixed:
        reasons.append(
            f"import/export direction fixed in {solution.directions_fixed} slot(s) where export "
            "pays more than import"
        )
    return PlanStatus("feasible", tuple(reasons)) if reasons else PlanStatus("optimal")


def _device_relaxations(solution: Solution, dt: float) -> list[str]:
    found: list[str] = []
    short = solution.device.get("hot_water_short")
    if short is not None and short.sum() * dt > SLACK_TOLERANCE_KWH:
        found.append(f"hot water {short.sum() * dt:.3f} kWh short of demand")
    outside = sum(
        int((solution.device[name] > 1e-6).sum())
        for name in ("level_under", "level_over")
        if name in solution.device
    )
    if outside:
        found.append(f"river level outside the licence band for {outside} slot(s)")
    if solution.level_short_m > 1e-6:
        found.append(f"river level {solution.level_short_m:.3f} m short of its end level")
    return found


def _to_plan(scenario: Scenario, home: Home, solution: Solution, status: PlanStatus) -> HomePlan:
    plan = HomePlan(
        home_id=home.id,
        status=status,
        cost_p=0.0,
        import_kw=solution.imp,
        export_kw=solution.exp,
        charge_kw=solution.ch,
        discharge_kw=solution.dis,
        soc_kwh=solution.soc,
        pv_used_kw=solution.pv,
        ev_kw=solution.ev,
        shed_kw=solution.shed,
        solve_seconds=solution.seconds,
        iterations=solution.iterations,
        device={
            name: values
            for name, values in solution.device.items()
            if name in ("heat", "store", "flow", "spill", "level")
        },
    )
    return _with_cost(scenario, home, plan)


def _with_cost(scenario: Scenario, home: Home, plan: HomePlan) -> HomePlan:
    cost = plan_cost_p(home, scenario.step_hours, plan)
    return replace(plan, cost_p=cost)


def _fallback(scenario: Scenario, home: Home, data: HomeData, solution: Solution) -> HomePlan:
    """No solution in time: a plan that needs no optimiser, marked ``relaxed``.

    Battery idle, EV charging from arrival, the tank kept at its level, the river level held
    (turbine flow = inflow, up to its maximum); the grid covers the rest, within its limits.
    """
    n, dt = scenario.slots, scenario.step_hours
    device: dict[str, Vector] = {}
    ev = _ev_on_arrival(home, data, dt)
    heat: Vector = np.zeros(n)
    if home.immersion is not None:
        heat, device["store"] = _tank_kept(home.immersion, dt)
        device["heat"] = heat
    hydro_kw: Vector = np.zeros(n)
    if home.hydro is not None:
        flow = np.minimum(np.asarray(home.hydro.inflow_m3s), home.hydro.flow_max_m3s)
        hydro_kw = flow * home.hydro.kw_per_m3s
    net = data.load_kw + ev + heat - data.pv_kw - hydro_kw
    imp = np.clip(net, 0.0, data.import_max_kw)
    exp = np.clip(-net, 0.0, data.export_max_kw)
    curtail = np.clip(-net, 0.0, None) - exp  # generation with nowhere to go
    pv = data.pv_kw - np.minimum(data.pv_kw, curtail)
    if home.hydro is not None:
        flow = (hydro_kw - (curtail - (data.pv_kw - pv))) / home.hydro.kw_per_m3s
        inflow = np.asarray(home.hydro.inflow_m3s)
        device |= {"flow": flow, "spill": inflow - flow, "level": np.full(n, home.hydro.level_m)}
    reasons = (
        f"solver gave no plan ({solution.solver_status})",
        "fallback: battery idle, EV charging from arrival",
    )
    zeros = np.zeros(n)
    plan = HomePlan(
        home_id=home.id,
        status=PlanStatus("relaxed", reasons),
        cost_p=0.0,
        import_kw=imp,
        export_kw=exp,
        charge_kw=zeros,
        discharge_kw=zeros,
        soc_kwh=np.full(n, data.soc_kwh),
        pv_used_kw=pv,
        ev_kw=ev,
        shed_kw=np.clip(net - imp, 0.0, None),
        solve_seconds=solution.seconds,
        iterations=solution.iterations,
        device=device,
    )
    return _with_cost(scenario, home, plan)


def _ev_on_arrival(home: Home, data: HomeData, dt: float) -> Vector:
    ev = np.zeros(len(data.ev_max_kw))
    needed = data.ev_energy_kwh
    efficiency = home.ev.efficiency if home.ev else 1.0
    for slot in range(len(ev)):
        ev[slot] = min(data.ev_max_kw[slot], max(needed, 0.0) / (efficiency * dt))
        needed -= ev[slot] * efficiency * dt
    return ev


def _tank_kept(tank: Immersion, dt: float) -> tuple[Vector, Vector]:
    """Heat to replace what is drawn and lost, as far as the heater allows."""
    heat, stores = [], []
    store = tank.store_kwh
    for demand in tank.demand_kw:
        kept = store * (1 - tank.loss_per_hour * dt)
        want = (max(store, tank.store_min_kwh) - kept) / dt + demand
        heat.append(min(max(want, 0.0), tank.power_kw))
        store = min(kept + (heat[-1] - demand) * dt, tank.tank_kwh)
        stores.append(store)
    return np.asarray(heat), np.asarray(stores)
