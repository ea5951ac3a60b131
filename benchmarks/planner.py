"""Planner benchmark: homes per second and cost gap against reference formulations.

Fleets of homes with battery, PV and EV (48 h at 30 min, three battery models, Agile-like
prices with export never dearer than import, so every formulation solves the same convex LP).

* ours: `fractal.planner.Planner`, one HiGHS model per device configuration, warm-started;
* fast (``method="auto"``): the exact vectorised battery + PV solver (`fractal.planner.fast`)
  for the homes it covers and can prove, HiGHS for the rest; it does not cover EVs, so it is
  measured on the battery + PV fleet (the same homes without their EV) as well;
* HiGHS cold: the same model built afresh for every home (what caching and warm starts save);
* linprog: scipy's HiGHS on an independent formulation (SoC eliminated), the optimum for the gap;
* PuLP + CBC: the formulation EMHASS and evcc used (needs ``cbc``: apt-get install coinor-cbc).

Speeds are reported as ratios to ours, measured in this run. The slow references run on a
sample of the fleet (``--sample``); the cost gap is over that sample, relative to the savings
of the optimum against an unmanaged baseline (battery idle, EV charging on arrival).

    .venv/bin/python benchmarks/planner.py              # 100 and 1 000 homes, ~2 minutes
    .venv/bin/python benchmarks/planner.py --full       # also 10 000 homes
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pulp
from fractal.planner import Planner, parse_scenario
from fractal.planner.model import HomeModel
from fractal.planner.parallel import PlannerPool, plan_homes
from fractal.planner.planner import Method, configuration, ev_window_kw, home_data
from fractal.planner.scenario import Home, Scenario
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, csr_matrix, eye, hstack, vstack

SLOTS, STEP = 96, 1800
START = datetime(2026, 11, 22, tzinfo=UTC)
BATTERIES = ((5.0, 2.5), (9.5, 3.6), (13.5, 5.0))  # kWh, kW


def fleet(homes: int, seed: int, ev: bool = True) -> Scenario:
    rng = np.random.default_rng(seed)
    hours = np.arange(SLOTS) * STEP / 3600 % 24
    base_price = 15 + 6 * np.sin((hours - 9) / 24 * 2 * np.pi) + 18 * ((hours >= 16) & (hours < 19))
    documents = []
    for index in range(homes):
        capacity, power = BATTERIES[index % len(BATTERIES)]
        imp = base_price + rng.normal(0, 2, SLOTS) - 9 * ((hours >= 1) & (hours < 5))
        # Never dearer than import (the premise above), also where import goes negative.
        exp = np.minimum(imp * 0.6 - 2 - rng.uniform(0, 1, SLOTS), imp)
        peak = rng.uniform(2, 5)
        pv = np.where((hours > 7) & (hours < 17), peak * np.sin((hours - 7) / 10 * np.pi), 0)
        pv *= rng.uniform(0.4, 1.0, SLOTS)
        load = 0.3 + 0.9 * np.exp(-((hours - 18.5) ** 2) / 3) * rng.uniform(0.5, 1.5)
        arrival = START + timedelta(hours=float(rng.integers(16, 21)))
        documents.append(
            {
                "id": f"home-{index}",
                "pv_kw": pv.round(3).tolist(),
                "load_kw": load.round(3).tolist(),
                "import_p_per_kwh": imp.round(3).tolist(),
                "export_p_per_kwh": exp.round(3).tolist(),
                "grid": {
                    "import_max_kw": 20,
                    "export_max_kw": 5,
                    "export_stored_grid_energy": True,
                },
                "battery": {
                    "capacity_kwh": capacity,
                    "soc_kwh": round(float(rng.uniform(0.1, 0.9)) * capacity, 3),
                    "soc_min_kwh": 0.05 * capacity,
                    "charge_kw": power,
                    "discharge_kw": power,
                    "cycle_cost_p_per_kwh": 1.5,
                    "terminal_soc_min_kwh": 0.2 * capacity,
                },
                "ev": {
                    "arrival": arrival.isoformat(),
                    "departure": (arrival + timedelta(hours=13)).isoformat(),
                    "energy_kwh": round(float(rng.uniform(5, 30)), 2),
                    "max_kw": 7.4,
                },
            }
        )
    if not ev:
        for document in documents:
            del document["ev"]
    return parse_scenario({"start": START.isoformat(), "step_seconds": STEP, "homes": documents})


def baseline_cost(scenario: Scenario, home: Home) -> float:
    """Unmanaged: battery idle, EV charging at full power from arrival until full."""
    dt, window = scenario.step_hours, ev_window_kw(scenario, home.ev)
    ev, needed = np.zeros(SLOTS), home.ev.energy_kwh if home.ev else 0.0
    efficiency = home.ev.efficiency if home.ev else 1.0
    for slot in range(SLOTS):
        ev[slot] = min(window[slot], needed / (efficiency * dt))
        needed -= ev[slot] * efficiency * dt
    net = np.asarray(home.load_kw) + ev - np.asarray(home.pv_kw)
    imp = np.clip(net, 0, home.grid.import_max_kw)
    exp = np.clip(-net, 0, home.grid.export_max_kw)
    return float((imp @ home.import_p_per_kwh - exp @ home.export_p_per_kwh) * dt)


def ours(scenario: Scenario, homes: list[Home]) -> list[float]:
    planner = Planner()
    return [planner.plan_home(scenario, home).cost_p for home in homes]


_fast_share: list[float] = []  # the share of homes the last `fast` run planned fast


def fast(scenario: Scenario, homes: list[Home]) -> list[float]:
    plans = Planner(method="auto").plan_homes(scenario, homes)
    _fast_share[:] = [sum(plan.solver == "fast" for plan in plans) / len(plans)]
    return [plan.cost_p for plan in plans]


def highs_cold(scenario: Scenario, homes: list[Home]) -> list[float]:
    costs = []
    for home in homes:
        solution = HomeModel(configuration(scenario, home)).solve(home_data(scenario, home))
        battery = home.battery
        assert battery is not None
        money = solution.imp @ home.import_p_per_kwh - solution.exp @ home.export_p_per_kwh
        wear = battery.cycle_cost_p_per_kwh * solution.dis.sum()
        costs.append(float((money + wear) * scenario.step_hours))
    return costs


def linprog_reference(scenario: Scenario, homes: list[Home]) -> list[float]:
    """Variables [imp, exp, ch, dis, pv, ev] per slot block; SoC as cumulative sums."""
    n, dt = SLOTS, scenario.step_hours
    costs = []
    cumulative = csr_matrix(np.tril(np.ones((n, n))))
    identity, zero = eye(n, format="csr"), csr_matrix((n, n))
    for home in homes:
        battery, ev = home.battery, home.ev
        assert battery is not None
        ev_efficiency, ev_energy = (ev.efficiency, ev.energy_kwh) if ev else (1.0, 0.0)
        stored = hstack(
            [
                zero,
                zero,
                cumulative * battery.charge_efficiency * dt,
                -cumulative * dt / battery.discharge_efficiency,
                zero,
                zero,
            ],
            format="csr",
        )
        terminal = stored[n - 1]
        a_ub = vstack(
            [
                stored,
                -stored,
                -terminal,
                hstack(
                    [zero, identity, zero, -identity, -identity, zero]
                ),  # export from PV/battery
                hstack(
                    [
                        zero,
                        zero,
                        identity / battery.charge_kw,
                        identity / battery.discharge_kw,
                        zero,
                        zero,
                    ]
                ),  # time share
                coo_matrix(np.r_[np.zeros(5 * n), -np.full(n, ev_efficiency * dt)]),
            ]
        )
        b_ub = np.r_[
            np.full(n, battery.soc_max - battery.soc_kwh),
            np.full(n, battery.soc_kwh - battery.soc_min_kwh),
            [battery.soc_kwh - battery.terminal_soc_min_kwh],
            np.zeros(n),
            np.ones(n),
            [-ev_energy],
        ]
        a_eq = hstack([identity, -identity, -identity, identity, identity, -identity])
        imp, exp = np.asarray(home.import_p_per_kwh), np.asarray(home.export_p_per_kwh)
        cost = (
            np.r_[imp, -exp, np.zeros(n), np.full(n, battery.cycle_cost_p_per_kwh), np.zeros(2 * n)]
            * dt
        )
        bounds = (
            [(0, home.grid.import_max_kw)] * n
            + [(0, home.grid.export_max_kw)] * n
            + [(0, battery.charge_kw)] * n
            + [(0, battery.discharge_kw)] * n
            + [(0, p) for p in home.pv_kw]
            + [(0, m) for m in ev_window_kw(scenario, ev)]
        )
        result = linprog(
            cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=home.load_kw, bounds=bounds, method="highs"
        )
        assert result.status == 0, result.message
        costs.append(float(result.fun))
    return costs


def pulp_cbc(scenario: Scenario, homes: list[Home]) -> list[float]:
    """The same rules in PuLP with CBC, one model built and solved per home."""
    solver = pulp.COIN_CMD(msg=False, path=shutil.which("cbc"))
    costs = []
    for home in homes:
        model = _pulp_model(scenario, home)
        model.solve(solver)
        objective = model.objective.value()
        assert objective is not None, "CBC found no solution"
        costs.append(float(objective))
    return costs


def _pulp_model(scenario: Scenario, home: Home) -> pulp.LpProblem:
    battery, ev, dt = home.battery, home.ev, scenario.step_hours
    assert battery is not None
    window = ev_window_kw(scenario, ev)
    model = pulp.LpProblem("home", pulp.LpMinimize)

    def series(name: str, upper: list[float]) -> list[pulp.LpVariable]:
        return [
            model.add_variable(f"{name}_{t}", lowBound=0, upBound=upper[t]) for t in range(SLOTS)
        ]

    imp = series("imp", [home.grid.import_max_kw] * SLOTS)
    exp = series("exp", [home.grid.export_max_kw] * SLOTS)
    ch = series("ch", [battery.charge_kw] * SLOTS)
    dis = series("dis", [battery.discharge_kw] * SLOTS)
    pv = series("pv", list(home.pv_kw))
    charge = series("ev", [float(w) for w in window])
    soc = series("soc", [battery.soc_max] * SLOTS)
    model += pulp.lpSum(
        (
            imp[t] * home.import_p_per_kwh[t]
            - exp[t] * home.export_p_per_kwh[t]
            + dis[t] * battery.cycle_cost_p_per_kwh
        )
        * dt
        for t in range(SLOTS)
    )
    for t in range(SLOTS):
        previous = soc[t - 1] if t else battery.soc_kwh
        model += pv[t] + dis[t] + imp[t] == home.load_kw[t] + ch[t] + charge[t] + exp[t]
        model += (
            soc[t]
            == previous
            + (battery.charge_efficiency * ch[t] - dis[t] * (1 / battery.discharge_efficiency)) * dt
        )
        model += soc[t] >= battery.soc_min_kwh
        model += exp[t] <= pv[t] + dis[t]
        model += ch[t] * (1 / battery.charge_kw) + dis[t] * (1 / battery.discharge_kw) <= 1
    model += soc[-1] >= battery.terminal_soc_min_kwh
    if ev is not None:
        model += pulp.lpSum(charge[t] * ev.efficiency * dt for t in range(SLOTS)) >= ev.energy_kwh
    return model


def timed(
    run: Callable[[Scenario, list[Home]], list[float]], scenario: Scenario, homes: list[Home]
) -> tuple[list[float], float]:
    """Costs and CPU seconds (this process and its children, e.g. cbc).

    CPU time, not wall time: other work on a shared machine must not skew the ratios.
    """
    started = _cpu_seconds()
    costs = run(scenario, homes)
    return costs, _cpu_seconds() - started


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _wall_clock_comparison(scenario: Scenario, method: Method = "highs") -> None:
    """Wall-clock homes/s: one process, two spawned for the run, two kept up (`PlannerPool`).

    Two processes only gain if the machine's second core is idle.
    """
    rates = []
    for workers in (1, 2):
        started = time.perf_counter()
        plan_homes(scenario, workers=workers, method=method)
        rates.append(len(scenario.homes) / (time.perf_counter() - started))
    with PlannerPool(2, method=method) as pool:
        pool.plan(scenario, indices=list(range(100)))  # start the workers
        started = time.perf_counter()
        pool.plan(scenario)
        rates.append(len(scenario.homes) / (time.perf_counter() - started))
    print(
        f"  wall clock ({method}): 1 process {rates[0]:.0f} homes/s; 2 processes started for "
        f"the run {rates[1]:.0f} homes/s; 2 running workers {rates[2]:.0f} homes/s "
        f"({rates[2] / rates[0]:.2f}x; load average now {os.getloadavg()[0]:.1f})"
    )


def report(size: int, sample_size: int, seed: int, ev: bool) -> None:
    scenario = fleet(size, seed, ev)
    homes = list(scenario.homes)
    sample = homes[:sample_size]
    our_costs, our_seconds = timed(ours, scenario, homes)
    our_rate = size / our_seconds
    fast_costs, fast_seconds = timed(fast, scenario, homes)
    fast_rate, share = size / fast_seconds, _fast_share[0]
    kind = "battery + PV + EV" if ev else "battery + PV"
    print(f"\n{size} homes, {kind} (references on {len(sample)}):")
    print(f"  ours (cached, warm HiGHS)  {our_rate:9.0f} homes/s  1.00x")
    print(
        f"  fast (auto)                {fast_rate:9.0f} homes/s  {fast_rate / our_rate:5.2f}x ours "
        f"({100 * share:.1f} % of homes planned fast, the rest by HiGHS)"
    )
    if size >= 1000:  # starting worker processes costs seconds: pointless for a street
        _wall_clock_comparison(scenario, "auto" if share else "highs")
    reference, ref_seconds = timed(linprog_reference, scenario, sample)
    baseline = [baseline_cost(scenario, home) for home in sample]
    savings = sum(baseline) - sum(reference)

    def gap(costs: list[float]) -> str:
        return f"gap {100 * (sum(costs) - sum(reference)) / savings:+.5f} % of savings"

    print(
        f"  ours vs optimum: {gap(our_costs[: len(sample)])} (optimum saves "
        f"{savings / len(sample):.1f} p/home vs unmanaged)"
    )
    print(f"  fast vs optimum: {gap(fast_costs[: len(sample)])}")
    whole = fast_gap_vs_ours(our_costs, fast_costs, scenario, homes)
    print(f"  fast vs ours over all {size} homes: {whole}")
    for name, run in (
        ("HiGHS cold (per home)", highs_cold),
        ("linprog (scipy HiGHS)", linprog_reference),
        ("PuLP + CBC", pulp_cbc),
    ):
        if run is pulp_cbc and shutil.which("cbc") is None:
            print(f"  {name:26} skipped: cbc not installed (apt-get install coinor-cbc)")
            continue
        costs, seconds = (
            (reference, ref_seconds) if run is linprog_reference else timed(run, scenario, sample)
        )
        rate = len(sample) / seconds
        print(
            f"  {name:26} {rate:9.0f} homes/s  {our_rate / rate:5.2f}x slower than ours, "
            f"{fast_rate / rate:6.1f}x slower than fast  {gap(costs)}"
        )


def fast_gap_vs_ours(
    our_costs: list[float], fast_costs: list[float], scenario: Scenario, homes: list[Home]
) -> str:
    """The cost gap of fast against warm HiGHS over the whole fleet, relative to savings."""
    baseline = sum(baseline_cost(scenario, home) for home in homes)
    savings = baseline - sum(our_costs)
    return f"gap {100 * (sum(fast_costs) - sum(our_costs)) / savings:+.6f} % of savings"


def main() -> None:  # guarded below: worker processes are spawned and re-import this file
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also run 10 000 homes")
    parser.add_argument("--sample", type=int, default=100, help="homes for the slow references")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"planner benchmark: {SLOTS} slots of {STEP // 60} min, battery + PV + EV per home")
    print("rates are homes per CPU-second (this process and its children), ratios to ours")
    for size in (100, 1000, 10_000) if args.full else (100, 1000):
        for ev in (True, False):
            report(size, min(size, args.sample), args.seed, ev)
    print(
        f"\ntarget: gap within 0.1 % of savings; 10 000 homes/s on 2 cores "
        f"(DESIGN: warm highspy 0.7 ms/home = {1 / 0.0007:.0f} homes/s)"
    )


if __name__ == "__main__":
    main()
