"""The per-home linear programme, solved with HiGHS and re-used across solves.

Variables per slot (powers in kW, averaged over the slot; energies in kWh):

* ``imp``, ``exp``  grid import and export, within the connection's limits;
* ``ch``, ``dis``   battery charge and discharge at the AC side (separate, so that each has
  its own efficiency);
* ``pv``            PV used, at most the forecast (the rest is curtailed);
* ``soc``           stored energy at the end of the slot;
* ``ev``            EV charging power, zero outside the plugged-in window;
* ``shed``, ``under``, ``over``  penalised slack: unserved load, SoC below its minimum or above
  its maximum (a start outside the band); plus ``ev_short`` and ``terminal_short`` once.

Rows per slot: energy balance, SoC dynamics, export only from PV or battery, battery time-share,
SoC band; plus the EV energy by departure and the terminal SoC.

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
power limits), so one HiGHS model per configuration is built once and then re-used with new
costs and bounds; HiGHS starts each solve from the previous basis (a warm start).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    solved: bool  # a primal feasible point was found (optimal unless the time limit struck)
    solver_status: str
    directions_fixed: int = 0
    passes: int = 1
    seconds: float = 0.0
    iterations: int = 0
    notes: list[str] = field(default_factory=list)


def column_blocks(config: Configuration) -> tuple[str, ...]:
    """The per-slot variable blocks this configuration needs, in column order."""
    blocks = ["imp", "exp", "ch", "dis", "pv", "soc", "shed"]
    if config.has_ev:
        blocks.append("ev")
    if config.soft_soc_band:
        blocks += ["under", "over"]
    if not config.export_stored_grid_energy:
        blocks += ["ch_pv", "dis_green", "green"]
    return tuple(blocks)


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
        self._ev_short = len(self._blocks) * n
        self._terminal_short = self._ev_short + 1
        self.num_cols = self._terminal_short + 1
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
        sources = [(col[name], 1.0) for name in ("pv", "dis", "imp", "shed")]
        sinks = [(col[name], -1.0) for name in ("ch", "ev", "exp") if name in col]
        rows.add("balance", n, sources + sinks)
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
            rows.add("export_source", n, [(col["exp"], 1), (col["pv"], -1), (col["dis"], -1)])
        else:
            self._add_green_account(rows)
        if min(c.charge_kw, c.discharge_kw) >= MIN_TIME_SHARE_KW:
            rows.add(
                "time_share", n, [(col["ch"], 1 / c.charge_kw), (col["dis"], 1 / c.discharge_kw)]
            )
        if c.soft_soc_band:
            rows.add("soc_min", n, [(col["soc"], 1), (col["under"], 1)])
            rows.add("soc_max", n, [(col["soc"], 1), (col["over"], -1)])
        rows.add("terminal", 1, [(col["soc"][-1:], 1), (_one(self._terminal_short), 1)])
        if c.has_ev:
            rows.add("ev_energy", 1, [(col["ev"], c.ev_efficiency * dt), (_one(self._ev_short), 1)])
        self._pass_model(rows)

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
        rows.add(
            "export_source",
            n,
            [(col["exp"], 1), (col["pv"], -1), (col["ch_pv"], 1), (col["dis_green"], -1)],
        )
        rows.add("green_from_charge", n, [(col["ch_pv"], 1), (col["ch"], -1)])
        rows.add("green_from_pv", n, [(col["ch_pv"], 1), (col["pv"], -1)])
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
        c, n, dt, inf = self.config, self.config.slots, self.config.step_hours, highspy.kHighsInf
        cost: dict[str, Vector] = dict.fromkeys(self._blocks, np.zeros(n))
        cost |= {
            "imp": data.import_cost * dt,
            "exp": -data.export_value * dt,
            "dis": np.full(n, data.cycle_cost_p_per_kwh * dt),
            "shed": np.full(n, SHED_PENALTY * dt),
            "under": np.full(n, SOC_BAND_PENALTY),
            "over": np.full(n, SOC_BAND_PENALTY),
        }
        upper: dict[str, Vector] = {
            "imp": np.full(n, data.import_max_kw),
            "exp": np.full(n, data.export_max_kw),
            "ch": np.full(n, c.charge_kw),
            "dis": np.full(n, c.discharge_kw),
            "pv": data.pv_kw,
            "soc": np.full(n, data.capacity_kwh if c.soft_soc_band else data.soc_max_kwh),
            "ev": data.ev_max_kw,
            "shed": data.load_kw,
            "under": np.full(n, inf),
            "over": np.full(n, inf),
            "ch_pv": np.full(n, c.charge_kw),
            "dis_green": np.full(n, c.discharge_kw),
            "green": np.full(n, data.capacity_kwh),
        }
        all_cost = np.concatenate(
            [*(cost[b] for b in self._blocks), [EV_SHORT_PENALTY, TERMINAL_PENALTY]]
        )
        all_upper = np.concatenate([*(upper[b] for b in self._blocks), [data.ev_energy_kwh, inf]])
        all_lower = np.zeros(self.num_cols)
        if not c.soft_soc_band:  # the start is inside the band: keep to it as plain bounds
            all_lower[self._col["soc"]] = data.soc_min_kwh
        self._highs.changeColsCost(self.num_cols, self._all_cols, all_cost)
        self._highs.changeColsBounds(self.num_cols, self._all_cols, all_lower, all_upper)
        self._highs.changeRowsBounds(self.num_rows, self._all_rows, *self._row_bounds(data))

    def _row_bounds(self, data: HomeData) -> tuple[Vector, Vector]:
        lower = np.full(self.num_rows, -highspy.kHighsInf)
        upper = np.full(self.num_rows, highspy.kHighsInf)
        r = self._row
        at_most_zero = [name for name in r if name.startswith(("export_source", "green_"))]
        lower[r["balance"]] = upper[r["balance"]] = data.load_kw
        for name, start in (("soc", data.soc_kwh), ("green", data.exportable_kwh)):
            if name in r:
                lower[r[name]] = upper[r[name]] = 0.0
                lower[r[name][0]] = upper[r[name][0]] = start
        for name in at_most_zero:
            upper[r[name]] = 0.0
        if "time_share" in r:
            upper[r["time_share"]] = 1.0
        if "soc_min" in r:
            lower[r["soc_min"]] = data.soc_min_kwh
            upper[r["soc_max"]] = data.soc_max_kwh
        lower[r["terminal"]] = data.terminal_soc_min_kwh
        if "ev_energy" in r:
            lower[r["ev_energy"]] = data.ev_energy_kwh
        return lower, upper

    # --- solving --------------------------------------------------------------------------

    def solve(self, data: HomeData) -> Solution:
        """Solve for ``data``; fix import/export direction where the relaxation did both."""
        started = time.perf_counter()
        self._load(data)
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
            solution = self._run()
            solution.directions_fixed, solution.passes = fixed, passes
        solution.seconds = time.perf_counter() - started
        if solution.solved:
            _net_meter(solution)
        return solution

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
            name: np.clip(values[self._col[name]], 0.0, None) if name in self._col else zeros
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
            ev_short_kwh=max(float(values[self._ev_short]), 0.0),
            terminal_short_kwh=max(float(values[self._terminal_short]), 0.0),
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

    def link_previous(self, name: str, state: Index) -> None:
        """Row t of ``name`` also gets ``-state[t - 1]``: a state carried from slot to slot."""
        self.entries.append((np.full(state.size - 1, -1.0), self.named[name][1:], state[:-1]))


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
