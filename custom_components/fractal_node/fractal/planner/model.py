"""The per-home linear programme, solved with HiGHS and re-used across solves.

Variables per slot (powers in kW, averaged over the slot; energies in kWh):

* ``imp``, ``exp``  grid import and export, within the connection's limits;
* ``ch``, ``dis``   battery charge and discharge at the AC side (separate, so that each has
  its own efficiency);
* ``pv``            PV used, at most the forecast (the rest is curtailed);
* ``soc``           stored energy at the end of the slot;
* ``ev``            EV charging power, zero outside the plugged-in window;
* ``shed``, ``under``, ``over``  penalised slack: unserved load, SoC below its minimum or above
  its maximum (only when the start is outside the band; otherwise the band is column bounds);
  plus ``ev_short``, ``terminal_short`` and ``level_short`` once;
* where the configuration has them: the green account (``ch_pv``, ``dis_green``, ``green``), the
  immersion tank (``heat``, ``store``, ``hot_water_short``), the hydro (``flow``, ``spill``,
  ``level`` and its band slack) and a coordinated grid cap's excess (``cap_over``).

Rows per slot: energy balance, SoC dynamics, export only from renewables or the battery, battery
time-share, and the rows of the optional parts; plus the EV energy by departure and the terminal
SoC and level.

Why no binaries for the battery: charging and discharging in the same slot loses
``1 - charge_efficiency * discharge_efficiency`` of the energy and pays the cycle cost, so the
optimum never does both unless it is paid to waste energy (an import price so negative that
``-price * (1 - eta_c * eta_d) > cycle_cost * (1 + eta_c * eta_d)``). Even then the time-share
row ``ch / charge_kw + dis / discharge_kw <= 1`` makes the plan executable: the battery charges
for part of the slot and discharges for the rest. The net set-point ``ch - dis`` is what goes
into the plan document.

No grid-to-grid arbitrage: a meter is net, so a slot either imports or exports. The row
``exp <= pv + dis`` forbids passing imports straight through to export. Importing for the load
while exporting PV in the same slot only pays where the export price exceeds the import price
(otherwise netting the two costs nothing, and we net them). In those slots the LP is non-convex;
we solve the relaxation, fix the direction of each slot that did both and solve again. The result
is then ``feasible`` (not proven optimal) and says so.

The coefficient matrix depends only on the device configuration (slot count, step, efficiencies,
power limits, which optional parts exist), so one HiGHS model per configuration is built once and
then re-used with new costs and bounds; HiGHS starts each solve from the previous basis (a warm
start).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]
Index = npt.NDArray[np.int32]
_Entries = tuple[Vector, Index, Index]  # values, rows, columns

SHED_PENALTY = 1e5  # per kWh of load not served (a connection too small for the load)
SOC_BAND_PENALTY = 1e5  # per kWh outside the SoC band, per slot (a start outside the band)
TERMINAL_PENALTY = 1e4  # per kWh short of the terminal SoC
EV_SHORT_PENALTY = 1e4  # per kWh short of the EV's energy by departure
HOT_WATER_PENALTY = 1e4  # per kWh of hot water the tank cannot give
# Per kWh over a coordinated grid cap: above any objective weight (prices <= 1 000 p/kWh, a
# mixed objective <= 3 000), below the household's own needs (EV, hot water, load).
GRID_CAP_PENALTY = 5e3
LEVEL_PENALTY = 1e6  # per metre outside the licence band, per slot, or short of the end level
OVERLAP_TOLERANCE_KW = 1e-6
SLACK_TOLERANCE_KWH = 1e-6
DEFAULT_TIME_LIMIT_S = 5.0
# Below 1 W a battery's charge-and-discharge overlap is negligible, and 1 / limit would be huge.
MIN_TIME_SHARE_KW = 1e-3


@dataclass(frozen=True)
class Configuration:
    """What fixes the coefficient matrix; one HiGHS model per distinct value."""

    slots: int
    step_hours: float
    charge_efficiency: float
    discharge_efficiency: float
    charge_kw: float
    discharge_kw: float
    has_ev: bool
    ev_efficiency: float
    export_stored_grid_energy: bool  # False: export only PV energy (a flat export tariff)
    soft_soc_band: bool  # the start is outside the SoC band: slack instead of column bounds
    immersion_loss_per_hour: float | None = None  # None: no immersion heater
    has_grid_cap: bool = False  # a per-slot cap on net import (fleet coordination)
    hydro: HydroShape | None = None  # None: no hydro


@dataclass(frozen=True)
class HydroShape:
    """What fixes the hydro rows: power per unit flow and level change per unit flow."""

    kw_per_m3s: float  # electrical output per m3/s through the turbine (head x efficiency)
    metres_per_m3s_slot: float  # level change of the pond per m3/s over one slot


@dataclass(frozen=True)
class HomeData:
    """Everything that changes between solves of one configuration."""

    pv_kw: Vector
    load_kw: Vector
    import_cost: Vector  # objective weight per kWh imported (pence, or pence + carbon)
    export_value: Vector  # objective weight per kWh exported
    import_max_kw: float
    export_max_kw: float
    capacity_kwh: float
    soc_kwh: float
    exportable_kwh: float  # the part of soc_kwh that came from PV
    soc_min_kwh: float
    soc_max_kwh: float
    terminal_soc_min_kwh: float
    cycle_cost_p_per_kwh: float
    ev_max_kw: Vector  # per slot: max power times the plugged-in fraction of the slot
    ev_energy_kwh: float
    immersion: ImmersionData | None = None
    hydro: HydroData | None = None
    grid_cap_kw: Vector | None = None  # per slot cap on net import (inf: none); soft


@dataclass(frozen=True)
class ImmersionData:
    power_kw: float
    tank_kwh: float
    store_kwh: float
    store_min_kwh: float
    demand_kw: Vector  # hot water drawn, as heat per slot


@dataclass(frozen=True)
class HydroData:
    inflow_m3s: Vector
    flow_max_m3s: float
    level_m: float
    level_min_m: float
    level_max_m: float
    rate_max_m_per_h: float
    terminal_level_min_m: float


@dataclass
class Solution:
    """The solved flows, per slot, with the solver's account of how it went."""

    imp: Vector
    exp: Vector
    ch: Vector
    dis: Vector
    pv: Vector
    soc: Vector
    ev: Vector
    shed: Vector
    under: Vector
    over: Vector
    ev_short_kwh: float
    terminal_short_kwh: float
    level_short_m: float
    device: dict[str, Vector]  # immersion and hydro blocks, when present
    solved: bool  # a primal feasible point was found (optimal unless the time limit struck)
    solver_status: str
    directions_fixed: int = 0
    passes: int = 1
    seconds: float = 0.0
    iterations: int = 0


def column_blocks(config: Configuration) -> tuple[str, ...]:
    """The per-slot variable blocks this configuration needs, in column order."""
    blocks = ["imp", "exp", "ch", "dis", "pv", "soc", "shed"]
    if config.has_ev:
        blocks.append("ev")
    if config.soft_soc_band:
        blocks += ["under", "over"]
    if not config.export_stored_grid_energy:
        blocks += ["ch_pv", "dis_green", "green"]
    if config.immersion_loss_per_hour is not None:
        blocks += IMMERSION_BLOCKS
    if config.hydro is not None:
        blocks += HYDRO_BLOCKS
    if config.has_grid_cap:
        blocks.append("cap_over")
    return tuple(blocks)


IMMERSION_BLOCKS = ("heat", "store", "hot_water_short")
HYDRO_BLOCKS = ("flow", "spill", "level", "level_under", "level_over")
_SINGLES = ("ev_short", "terminal_short", "level_short")


class HomeModel:
    """One HiGHS model for one configuration, solved again and again with new data."""

    def __init__(self, config: Configuration, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> None:
        self.config = config
        self.time_limit_s = time_limit_s
        n = config.slots
        self._blocks = column_blocks(config)
        self._col = {
            name: np.arange(i * n, (i + 1) * n, dtype=np.int32)
            for i, name in enumerate(self._blocks)
        }
        first_single = len(self._blocks) * n
        self._single = {name: first_single + i for i, name in enumerate(_SINGLES)}
        self.num_cols = first_single + len(_SINGLES)
        # highspy's stubs are partial; the calls used here are covered by the tests.
        self._highs: Any = highspy.Highs()  # type: ignore[no-untyped-call]
        self._highs.setOptionValue("output_flag", False)
        self._highs.setOptionValue("time_limit", time_limit_s)
        # Re-solves start from the previous basis; presolve would discard it.
        self._highs.setOptionValue("presolve", "off")
        self._highs.setOptionValue("solver", "simplex")
        self._build()

    # --- building -------------------------------------------------------------------------

    def _build(self) -> None:
        c, n, dt, col = self.config, self.config.slots, self.config.step_hours, self._col
        rows = _Rows()
        self._row = rows.named
        # pv + dis + imp + shed - ch - ev - exp = load
        sources = [*self._renewable(), *((col[name], 1.0) for name in ("dis", "imp", "shed"))]
        sinks = [(col[name], -1.0) for name in ("ch", "ev", "exp", "heat") if name in col]
        rows.add("balance", n, [*sources, *sinks])
        # soc[t] - soc[t-1] - eta_c dt ch + dt / eta_d dis = 0 (= soc0 for t = 0)
        rows.add(
            "soc",
            n,
            [
                (col["soc"], 1),
                (col["ch"], -c.charge_efficiency * dt),
                (col["dis"], dt / c.discharge_efficiency),
            ],
        )
        rows.link_previous("soc", col["soc"])
        if c.export_stored_grid_energy:
            # exp - pv - dis <= 0: export comes from PV or the battery, never straight from imports
            renewable = [(cols, -value) for cols, value in self._renewable()]
            rows.add("export_source", n, [(col["exp"], 1), (col["dis"], -1), *renewable])
        else:
            self._add_green_account(rows)
        if min(c.charge_kw, c.discharge_kw) >= MIN_TIME_SHARE_KW:
            rows.add(
                "time_share", n, [(col["ch"], 1 / c.charge_kw), (col["dis"], 1 / c.discharge_kw)]
            )
        if c.soft_soc_band:
            rows.add("soc_min", n, [(col["soc"], 1), (col["under"], 1)])
            rows.add("soc_max", n, [(col["soc"], 1), (col["over"], -1)])
        terminal_short, ev_short = (
            _one(self._single["terminal_short"]),
            _one(self._single["ev_short"]),
        )
        rows.add("terminal", 1, [(col["soc"][-1:], 1), (terminal_short, 1)])
        if c.has_ev:
            rows.add("ev_energy", 1, [(col["ev"], c.ev_efficiency * dt), (ev_short, 1)])
        if c.immersion_loss_per_hour is not None:
            self._add_immersion(rows, c.immersion_loss_per_hour)
        if c.has_grid_cap:
            # imp - exp - cap_over <= cap: the home's share of a group's cap, soft.
            terms = [(col["imp"], 1.0), (col["exp"], -1.0), (col["cap_over"], -1.0)]
            rows.add("grid_cap", n, terms)
        if c.hydro is not None:
            self._add_hydro(rows, c.hydro)
        self._pass_model(rows)

    def _renewable(self) -> list[tuple[Index, float]]:
        """PV used plus hydro output, as (columns, coefficient) terms."""
        terms: list[tuple[Index, float]] = [(self._col["pv"], 1.0)]
        if self.config.hydro is not None:
            terms.append((self._col["flow"], self.config.hydro.kw_per_m3s))
        return terms

    def _add_immersion(self, rows: _Rows, loss_per_hour: float) -> None:
        """A hot-water tank as a thermal store, heated by the immersion heater.

        ``store[t] = (1 - loss dt) store[t-1] + (heat + short - demand) dt``; ``short`` is hot
        water the tank cannot give (penalised). On/off is a duty cycle within the slot, so
        ``heat`` is continuous in ``[0, power]``: no binaries.
        """
        n, dt, col = self.config.slots, self.config.step_hours, self._col
        rows.add("store", n, [(col["store"], 1), (col["heat"], -dt), (col["hot_water_short"], -dt)])
        rows.link_previous("store", col["store"], 1 - loss_per_hour * dt)

    def _add_hydro(self, rows: _Rows, shape: HydroShape) -> None:
        """Run-of-river hydro as "the river as a battery": the upstream level is the state.

        ``level[t] = level[t-1] + (inflow - flow - spill) * metres_per_m3s_slot``: lowering the
        turbine flow raises the level (stores water), raising it releases water. The licence
        band is soft (penalised slack, for a start outside it); the rate of change is a ranged
        row ``|level[t] - level[t-1]| <= rate dt``. Spill over the weir is free, so holding the
        level is always possible.
        """
        n, col, k = self.config.slots, self._col, shape.metres_per_m3s_slot
        rows.add("level", n, [(col["level"], 1), (col["flow"], k), (col["spill"], k)])
        rows.link_previous("level", col["level"])
        rows.add("level_rate", n, [(col["level"], 1)])
        rows.link_previous("level_rate", col["level"])
        rows.add("level_min", n, [(col["level"], 1), (col["level_under"], 1)])
        rows.add("level_max", n, [(col["level"], 1), (col["level_over"], -1)])
        level_short = _one(self._single["level_short"])
        rows.add("level_terminal", 1, [(col["level"][-1:], 1), (level_short, 1)])

    def _pass_model(self, rows: _Rows) -> None:
        values = np.concatenate([r[0] for r in rows.entries])
        row_index = np.concatenate([r[1] for r in rows.entries])
        col_index = np.concatenate([r[2] for r in rows.entries])
        self.num_rows = rows.count
        order = np.lexsort((row_index, col_index))
        starts = np.searchsorted(col_index[order], np.arange(self.num_cols + 1))

        lp = highspy.HighsLp()
        lp.num_col_ = self.num_cols
        lp.num_row_ = self.num_rows
        lp.col_cost_ = np.zeros(self.num_cols)
        lp.col_lower_ = np.zeros(self.num_cols)
        lp.col_upper_ = np.zeros(self.num_cols)
        lp.row_lower_ = np.full(self.num_rows, -highspy.kHighsInf)
        lp.row_upper_ = np.full(self.num_rows, highspy.kHighsInf)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = starts.astype(np.int32)
        lp.a_matrix_.index_ = row_index[order].astype(np.int32)
        lp.a_matrix_.value_ = values[order]
        status = self._highs.passModel(lp)
        if status != highspy.HighsStatus.kOk:
            raise ValueError(f"HiGHS rejected the model for {self.config}: {status}")
        self._all_cols = np.arange(self.num_cols, dtype=np.int32)
        self._all_rows = np.arange(self.num_rows, dtype=np.int32)

    def _add_green_account(self, rows: _Rows) -> None:
        """Export only PV or battery energy that came from PV: the 'green' share of the SoC.

        ``green`` is stored energy charged from PV (``ch_pv`` <= ``ch`` and <= ``pv``),
        released by ``dis_green`` <= ``dis``, never more than the SoC. Export is limited to PV
        not charged into the battery plus green discharge, so energy bought from the grid is
        never sold back to it, even hours later when a flat export rate beats the night rate.
        """
        c, n, dt, col = self.config, self.config.slots, self.config.step_hours, self._col
        renewable = [(cols, -value) for cols, value in self._renewable()]
        rows.add(
            "export_source",
            n,
            [(col["exp"], 1), (col["ch_pv"], 1), (col["dis_green"], -1), *renewable],
        )
        rows.add("green_from_charge", n, [(col["ch_pv"], 1), (col["ch"], -1)])
        rows.add("green_from_pv", n, [(col["ch_pv"], 1), *renewable])
        rows.add("green_to_discharge", n, [(col["dis_green"], 1), (col["dis"], -1)])
        rows.add(
            "green",
            n,
            [
                (col["green"], 1),
                (col["ch_pv"], -c.charge_efficiency * dt),
                (col["dis_green"], dt / c.discharge_efficiency),
            ],
        )
        rows.link_previous("green", col["green"])
        rows.add("green_within_soc", n, [(col["green"], 1), (col["soc"], -1)])

    # --- data -----------------------------------------------------------------------------

    def _load(self, data: HomeData) -> None:
        cost, lower, upper = self._column_data(data)
        singles_cost = [EV_SHORT_PENALTY, TERMINAL_PENALTY, LEVEL_PENALTY]
        singles_upper = [data.ev_energy_kwh, highspy.kHighsInf, highspy.kHighsInf]
        blocks = self._blocks
        all_cost = np.concatenate(
            [*(cost.get(b, np.zeros(self.config.slots)) for b in blocks), singles_cost]
        )
        all_lower = np.concatenate(
            [*(lower.get(b, np.zeros(self.config.slots)) for b in blocks), [0, 0, 0]]
        )
        all_upper = np.concatenate([*(upper[b] for b in blocks), singles_upper])
        self._highs.changeColsCost(self.num_cols, self._all_cols, all_cost)
        self._highs.changeColsBounds(self.num_cols, self._all_cols, all_lower, all_upper)
        self._highs.changeRowsBounds(self.num_rows, self._all_rows, *self._row_bounds(data))

    def _column_data(
        self, data: HomeData
    ) -> tuple[dict[str, Vector], dict[str, Vector], dict[str, Vector]]:
        """Cost, lower and upper bound per block (missing cost or lower: zero)."""
        c, n, dt, inf = self.config, self.config.slots, self.config.step_hours, highspy.kHighsInf
        full = partial(np.full, n)
        cost: dict[str, Vector] = {
            "imp": data.import_cost * dt,
            "exp": -data.export_value * dt,
            "dis": full(data.cycle_cost_p_per_kwh * dt),
            "shed": full(SHED_PENALTY * dt),
            "under": full(SOC_BAND_PENALTY),
            "over": full(SOC_BAND_PENALTY),
            "hot_water_short": full(HOT_WATER_PENALTY * dt),
            "level_under": full(LEVEL_PENALTY),
            "level_over": full(LEVEL_PENALTY),
            "cap_over": full(GRID_CAP_PENALTY * dt),
        }
        # The start inside the SoC band: keep to it as plain bounds (no slack rows).
        soc_low, soc_high = (
            (0.0, data.capacity_kwh) if c.soft_soc_band else (data.soc_min_kwh, data.soc_max_kwh)
        )
        lower: dict[str, Vector] = {"soc": full(soc_low), "level": full(-inf)}
        upper: dict[str, Vector] = {
            "imp": full(data.import_max_kw),
            "exp": full(data.export_max_kw),
            "ch": full(c.charge_kw),
            "dis": full(c.discharge_kw),
            "pv": data.pv_kw,
            "soc": full(soc_high),
            "ev": data.ev_max_kw,
            "shed": data.load_kw,
            "ch_pv": full(c.charge_kw),
            "dis_green": full(c.discharge_kw),
            "green": full(data.capacity_kwh),
        } | dict.fromkeys(
            (
                "under",
                "over",
                "spill",
                "level",
                "level_under",
                "level_over",
                "hot_water_short",
                "cap_over",
            ),
            full(inf),
        )
        if data.immersion is not None:
            lower["store"] = full(data.immersion.store_min_kwh)
            upper |= {"heat": full(data.immersion.power_kw), "store": full(data.immersion.tank_kwh)}
        if data.hydro is not None:
            upper["flow"] = full(data.hydro.flow_max_m3s)
        return cost, lower, upper

    def _row_bounds(self, data: HomeData) -> tuple[Vector, Vector]:
        lower = np.full(self.num_rows, -highspy.kHighsInf)
        upper = np.full(self.num_rows, highspy.kHighsInf)
        r = self._row

        def equal(name: str, values: Vector | float) -> None:
            lower[r[name]] = upper[r[name]] = values

        equal("balance", data.load_kw)
        equal("soc", 0.0)
        lower[r["soc"][0]] = upper[r["soc"][0]] = data.soc_kwh
        if "green" in r:
            equal("green", 0.0)
            lower[r["green"][0]] = upper[r["green"][0]] = data.exportable_kwh
        for name in r:
            if name.startswith(("export_source", "green_")):
                upper[r[name]] = 0.0
        if "time_share" in r:
            upper[r["time_share"]] = 1.0
        if "soc_min" in r:
            lower[r["soc_min"]] = data.soc_min_kwh
            upper[r["soc_max"]] = data.soc_max_kwh
        lower[r["terminal"]] = data.terminal_soc_min_kwh
        if "ev_energy" in r:
            lower[r["ev_energy"]] = data.ev_energy_kwh
        if data.immersion is not None and self.config.immersion_loss_per_hour is not None:
            keep = 1 - self.config.immersion_loss_per_hour * self.config.step_hours
            equal("store", -data.immersion.demand_kw * self.config.step_hours)
            lower[r["store"][0]] = upper[r["store"][0]] = lower[r["store"][0]] + (
                keep * data.immersion.store_kwh
            )
        if "grid_cap" in r:
            no_cap = np.full(self.config.slots, highspy.kHighsInf)
            upper[r["grid_cap"]] = no_cap if data.grid_cap_kw is None else data.grid_cap_kw
        if data.hydro is not None and self.config.hydro is not None:
            self._hydro_row_bounds(data.hydro, self.config.hydro, lower, upper)
        return lower, upper

    def _hydro_row_bounds(
        self, hydro: HydroData, shape: HydroShape, lower: Vector, upper: Vector
    ) -> None:
        r, step = self._row, self.config.step_hours
        level, rate = r["level"], r["level_rate"]
        lower[level] = upper[level] = hydro.inflow_m3s * shape.metres_per_m3s_slot
        lower[level[0]] += hydro.level_m
        upper[level[0]] += hydro.level_m
        lower[rate], upper[rate] = -hydro.rate_max_m_per_h * step, hydro.rate_max_m_per_h * step
        lower[rate[0]] += hydro.level_m
        upper[rate[0]] += hydro.level_m
        lower[r["level_min"]] = hydro.level_min_m
        upper[r["level_max"]] = hydro.level_max_m
        lower[r["level_terminal"]] = hydro.terminal_level_min_m

    # --- solving --------------------------------------------------------------------------

    def solve(self, data: HomeData) -> Solution:
        """Solve for ``data``; fix import/export direction where the relaxation did both.

        The time limit covers all passes together: each gets what the earlier ones left.
        """
        started = time.perf_counter()
        self._load(data)
        self._set_time_limit(self.time_limit_s)
        solution = self._run()
        pays_both = data.export_value > data.import_cost + 1e-12
        for _ in range(4):
            if not solution.solved:
                break
            both = pays_both & (np.minimum(solution.imp, solution.exp) > OVERLAP_TOLERANCE_KW)
            if not both.any():
                break
            self._fix_directions(both, solution)
            fixed = solution.directions_fixed + int(both.sum())
            passes = solution.passes + 1
            left = self.time_limit_s - (time.perf_counter() - started)
            self._set_time_limit(max(left, 1e-6))
            solution = self._run()
            solution.directions_fixed, solution.passes = fixed, passes
        solution.seconds = time.perf_counter() - started
        if solution.solved:
            _net_meter(solution)
        return solution

    def _set_time_limit(self, seconds: float) -> None:
        """Allow the next run ``seconds``: HiGHS's limit counts its run clock, which keeps
        running from one solve of a re-used model to the next (without this, a model stops
        solving for good once its solves add up to the limit)."""
        self._highs.setOptionValue("time_limit", self._highs.getRunTime() + seconds)

    def _fix_directions(self, slots: npt.NDArray[np.bool_], solution: Solution) -> None:
        exporting = solution.exp >= solution.imp
        for kind, chosen in (("imp", slots & exporting), ("exp", slots & ~exporting)):
            index = self._col[kind][chosen]
            if index.size:
                self._highs.changeColsBounds(
                    index.size, index, np.zeros(index.size), np.zeros(index.size)
                )

    def _run(self) -> Solution:
        self._highs.run()
        status = self._highs.getModelStatus()
        info = self._highs.getInfo()
        # A time limit may still leave a primal feasible point (simplex phase 2): use it.
        solved = status == highspy.HighsModelStatus.kOptimal or (
            info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
        )
        values = np.asarray(self._highs.allVariableValues(), dtype=np.float64)
        if values.size != self.num_cols:
            values = np.zeros(self.num_cols)
        zeros = np.zeros(self.config.slots)
        parts = {
            name: np.maximum(values[self._col[name]], 0.0) if name in self._col else zeros
            for name in ("imp", "exp", "ch", "dis", "pv", "ev", "shed", "under", "over")
        }
        return Solution(
            imp=parts["imp"],
            exp=parts["exp"],
            ch=parts["ch"],
            dis=parts["dis"],
            pv=parts["pv"],
            soc=values[self._col["soc"]],
            ev=parts["ev"],
            shed=parts["shed"],
            under=parts["under"],
            over=parts["over"],
            ev_short_kwh=max(float(values[self._single["ev_short"]]), 0.0),
            terminal_short_kwh=max(float(values[self._single["terminal_short"]]), 0.0),
            level_short_m=max(float(values[self._single["level_short"]]), 0.0),
            device={
                name: values[self._col[name]]
                for name in (*IMMERSION_BLOCKS, *HYDRO_BLOCKS)
                if name in self._col
            },
            solved=solved,
            solver_status=self._highs.modelStatusToString(status),
            iterations=int(info.simplex_iteration_count),
        )


def _net_meter(solution: Solution) -> None:
    """Net import against export in each slot: a meter flows one way at a time.

    Only slots where both are (numerically) positive change; there the prices are equal or the
    direction was fixed, so netting leaves the cost unchanged.
    """
    overlap = np.minimum(solution.imp, solution.exp)
    solution.imp = solution.imp - overlap
    solution.exp = solution.exp - overlap


class _Rows:
    """Collects constraint rows as (values, rows, columns) entries, each row group named."""

    def __init__(self) -> None:
        self.entries: list[_Entries] = []
        self.named: dict[str, Index] = {}
        self.count = 0

    def add(self, name: str, count: int, terms: Sequence[tuple[Index, float]]) -> None:
        """``count`` rows; each term adds ``value * column`` (one column per row, or all to one)."""
        index = np.arange(self.count, self.count + count, dtype=np.int32)
        self.named[name] = index
        for cols, value in terms:
            row_of = index if cols.size == count else np.full(cols.size, index[0], np.int32)
            self.entries.append((np.full(cols.size, value), row_of, cols))
        self.count += count

    def link_previous(self, name: str, state: Index, keep: float = 1.0) -> None:
        """Row t of ``name`` also gets ``-keep * state[t - 1]``: a state carried across slots."""
        self.entries.append((np.full(state.size - 1, -keep), self.named[name][1:], state[:-1]))


def _one(column: int) -> Index:
    return np.array([column], dtype=np.int32)


class ModelCache:
    """One `HomeModel` per configuration: the model is built once, then re-used warm."""

    def __init__(self, time_limit_s: float = DEFAULT_TIME_LIMIT_S, max_models: int = 256) -> None:
        self.time_limit_s = time_limit_s
        self.max_models = max_models
        self._models: dict[Configuration, HomeModel] = {}
        self.builds = 0

    def model(self, config: Configuration) -> HomeModel:
        found = self._models.get(config)
        if found is None:
            if len(self._models) >= self.max_models:
                self._models.pop(next(iter(self._models)))
            found = HomeModel(config, self.time_limit_s)
            self._models[config] = found
            self.builds += 1
        return found
