"""An exact, vectorised solver for the common home: one battery, PV and the grid.

For homes without EV, immersion, hydro or a grid cap, whose start is inside the SoC band, whose
export value never exceeds the import cost and whose prices are never so negative that wasting
energy in the battery pays (see `applies`), the LP of
`fractal.planner.model` reduces to a one-dimensional problem in the state of charge ``s``::

    minimise  sum_t H_t(s_t - s_{t-1})   with  soc_min <= s_t <= soc_max,  s_T >= terminal

where ``H_t(d)`` is the cheapest way to change the stored energy by ``d`` in slot ``t``: the
grid, curtailment and the battery's efficiencies and cycle cost folded into one convex,
piecewise-linear function of ``d`` (at most six pieces). Charging ``c`` more and discharging
``eta_c eta_d c`` more in one slot leaves ``d`` unchanged, raises the grid-side energy by
``(1 - eta_c eta_d) c`` and the cycle cost by ``cycle eta_c eta_d c``; when
``min(export value, 0) (1 - eta_c eta_d) + cycle eta_c eta_d >= 0`` (the grid's cost falls by
at most ``-min(export value, 0)`` per kWh) that never pays, so the per-slot minimum is reached
without charging and discharging together and the time-share row of the LP is slack.

Dynamic programming over ``s`` is then exact: the value function
``V_t = (V_{t-1} infimal-convolution H_t)`` clipped to the SoC band is convex and
piecewise-linear, and the infimal convolution of two such functions is the merge of their pieces
sorted by slope. So each slot is one sort of a few dozen (slope, length) pairs per home, done
for thousands of homes at once in numpy; a backward pass splits each ``s_t`` into
``s_{t-1}`` and the slot's change. No discretisation: the result is the LP optimum up to
rounding.

A home the method does not cover, or whose recovered plan does not cost what the dynamic
programme says (the consistency certificate), is left to HiGHS: `solve_batch` returns ``None``
for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .model import TERMINAL_PENALTY, Configuration, HomeData, Solution, Vector

Matrix = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

_DEAD_SLOPE = 1e30  # sorts a zero-length piece to the end, where it is trimmed
_ALIVE_KWH = 1e-12  # pieces shorter than this carry no energy worth keeping
# The recovered plan's cost must match the dynamic programme's value to this (relative) margin.
CERTIFICATE_TOLERANCE = 1e-7


def applies(config: Configuration, data: HomeData) -> str | None:
    """``None`` if the fast method is exact for this home, else why it is not."""
    if config.has_ev:
        return "EV"
    if config.immersion_loss_per_hour is not None or config.hydro is not None:
        return "immersion or hydro"
    if config.has_grid_cap or data.grid_cap_kw is not None:
        return "grid cap"
    if config.soft_soc_band:
        return "start outside the SoC band"
    if not config.export_stored_grid_energy:
        return "export of PV energy only"
    if (
        data.cycle_cost_p_per_kwh < 0
        or min(config.charge_efficiency, config.discharge_efficiency) <= 0
    ):
        return "negative cycle cost or efficiency"
    if (data.export_value > data.import_cost).any():
        return "export dearer than import"
    round_trip = config.charge_efficiency * config.discharge_efficiency
    lowest = np.minimum(data.export_value, 0.0)  # the lowest slope of the grid's cost
    if (lowest * (1 - round_trip) + data.cycle_cost_p_per_kwh * round_trip < 0).any():
        return "prices so negative that wasting energy in the battery pays"
    if np.abs(data.import_cost).max() / config.charge_efficiency >= TERMINAL_PENALTY:
        return "prices above the penalty for a short terminal SoC"
    if not (np.isfinite(data.import_cost).all() and np.isfinite(data.export_value).all()):
        return "non-finite prices"
    return None


@dataclass
class _Batch:
    """Per-home parameters as arrays: (homes,) scalars and (homes, slots) series."""

    dt: float
    load: Matrix
    pv: Matrix
    imp_price: Matrix
    exp_price: Matrix
    import_max: Vector
    export_max: Vector
    charge_kw: Vector
    discharge_kw: Vector
    eta_c: Vector
    eta_d: Vector
    cycle: Vector
    soc0: Vector
    soc_min: Vector
    soc_max: Vector
    terminal: Vector

    @classmethod
    def of(cls, configs: Sequence[Configuration], data: Sequence[HomeData]) -> _Batch:
        def scalar(values: list[float]) -> Vector:
            return np.asarray(values, dtype=np.float64)

        return cls(
            dt=configs[0].step_hours,
            load=np.stack([d.load_kw for d in data]),
            pv=np.stack([d.pv_kw for d in data]),
            imp_price=np.stack([d.import_cost for d in data]),
            exp_price=np.stack([d.export_value for d in data]),
            import_max=scalar([d.import_max_kw for d in data]),
            export_max=scalar([d.export_max_kw for d in data]),
            charge_kw=scalar([c.charge_kw for c in configs]),
            discharge_kw=scalar([c.discharge_kw for c in configs]),
            eta_c=scalar([c.charge_efficiency for c in configs]),
            eta_d=scalar([c.discharge_efficiency for c in configs]),
            cycle=scalar([d.cycle_cost_p_per_kwh for d in data]),
            soc0=scalar([d.soc_kwh for d in data]),
            soc_min=scalar([d.soc_min_kwh for d in data]),
            soc_max=scalar([d.soc_max_kwh for d in data]),
            terminal=scalar([max(d.terminal_soc_min_kwh, d.soc_min_kwh) for d in data]),
        )


@dataclass
class _Pieces:
    """Convex piecewise-linear functions, one per home: value at the domain start, then pieces."""

    start: Vector  # where the domain begins (kWh stored)
    value: Vector  # the function's value there (pence)
    slopes: Matrix  # (homes, pieces) pence per kWh stored, ascending
    lengths: Matrix  # (homes, pieces) kWh


def _slot_function(b: _Batch, t: int) -> tuple[_Pieces, Mask]:
    """``H_t``: the cost of changing the stored energy by ``d`` in slot ``t``, and feasibility.

    In grid-side energy ``X = (load - pv) dt + B`` (``B`` the battery's AC energy, > 0
    charging) the slot costs, from all PV curtailed and exporting at the limit upwards: taking
    back curtailed PV (free) and exporting less (export price), cheaper first, then importing
    (import price). ``B < 0`` maps to ``d = B / eta_d`` and pays
    the cycle cost; ``B > 0`` maps to ``d = eta_c B``.
    """
    dt = b.dt
    pv, e_max, i_max = b.pv[:, t] * dt, b.export_max * dt, b.import_max * dt
    x0 = -(pv + e_max)  # all PV curtailed, exporting at the limit
    exp_price = b.exp_price[:, t]
    # Cheapest first: a negative export price makes exporting less worth more than the PV.
    export_first = exp_price < 0
    grid_slopes = np.stack(
        [np.minimum(exp_price, 0), np.maximum(exp_price, 0), b.imp_price[:, t]], axis=1
    )
    grid_lengths = np.stack(
        [np.where(export_first, e_max, pv), np.where(export_first, pv, e_max), i_max], axis=1
    )
    ends = x0[:, None] + np.cumsum(grid_lengths, axis=1)
    begins = ends - grid_lengths
    a = (b.load[:, t] - b.pv[:, t]) * dt  # X with the battery idle
    x_lo = np.maximum(a - b.discharge_kw * dt, x0)
    x_hi = np.minimum(a + b.charge_kw * dt, ends[:, -1])
    feasible = x_lo <= x_hi + 1e-9
    x_hi = np.maximum(x_hi, x_lo)
    # Each grid piece split at B = 0: the discharging part, then the charging part.
    left = np.clip(
        np.minimum(ends, np.minimum(a, x_hi)[:, None]) - np.maximum(begins, x_lo[:, None]), 0, None
    )
    right = np.clip(
        np.minimum(ends, x_hi[:, None]) - np.maximum(begins, np.maximum(a, x_lo)[:, None]), 0, None
    )
    eta_c, eta_d = b.eta_c[:, None], b.eta_d[:, None]
    slopes = np.concatenate([eta_d * (grid_slopes - b.cycle[:, None]), grid_slopes / eta_c], axis=1)
    lengths = np.concatenate([left / eta_d, right * eta_c], axis=1)
    below = x_lo - a  # B at the domain start
    start = np.where(below < 0, below / b.eta_d, below * b.eta_c)
    grid_value = -exp_price * e_max + (
        grid_slopes * np.clip(x_lo[:, None] - begins, 0, grid_lengths)
    ).sum(axis=1)
    value = grid_value + b.cycle * np.maximum(-below, 0)
    return _Pieces(start, value, slopes, lengths), feasible


@dataclass
class _Merge:
    """What the backward pass needs of one slot's merge."""

    start: Vector
    start_h: Vector
    lengths: Matrix  # merged pieces, sorted by slope, before clipping to the band
    from_slot: Mask  # the piece came from H_t (not from V_{t-1})


def _merge(v: _Pieces, h: _Pieces) -> tuple[_Pieces, _Merge]:
    """The infimal convolution of two convex piecewise-linear functions: pieces sorted by slope."""
    slopes = np.concatenate([v.slopes, h.slopes], axis=1)
    lengths = np.concatenate([v.lengths, h.lengths], axis=1)
    from_slot = np.zeros(slopes.shape, dtype=bool)
    from_slot[:, v.slopes.shape[1] :] = True
    order = np.argsort(slopes, axis=1, kind="stable")
    slopes = np.take_along_axis(slopes, order, axis=1)
    lengths = np.take_along_axis(lengths, order, axis=1)
    from_slot = np.take_along_axis(from_slot, order, axis=1)
    start = v.start + h.start
    merged = _Pieces(start, v.value + h.value, slopes, lengths)
    return merged, _Merge(start, h.start, lengths, from_slot)


def _clip(f: _Pieces, low: Vector, high: Vector) -> tuple[_Pieces, Mask]:
    """Restrict ``f`` to ``[low, high]``; drop emptied pieces and trim the padding."""
    ends = f.start[:, None] + np.cumsum(f.lengths, axis=1)
    begins = ends - f.lengths
    cut_front = np.clip(low[:, None] - begins, 0, f.lengths)
    lengths = np.clip(np.minimum(ends, high[:, None]) - np.maximum(begins, low[:, None]), 0, None)
    feasible = (f.start <= high + 1e-9) & (ends[:, -1] >= low - 1e-9) & (low <= high + 1e-9)
    value = f.value + (f.slopes * cut_front).sum(axis=1)
    alive = lengths > _ALIVE_KWH
    slopes = np.where(alive, f.slopes, _DEAD_SLOPE)
    lengths = np.where(alive, lengths, 0.0)
    order = np.argsort(slopes, axis=1, kind="stable")
    width = max(int(alive.sum(axis=1).max()), 1)
    order = order[:, :width]
    start = np.minimum(np.maximum(f.start, low), high)
    clipped = _Pieces(
        start,
        value,
        np.take_along_axis(slopes, order, axis=1),
        np.take_along_axis(lengths, order, axis=1),
    )
    return clipped, feasible


def _optimal_soc(b: _Batch) -> tuple[Matrix, Vector, Mask]:
    """SoC at each slot end, the optimal cost and which homes were feasible."""
    homes, slots = b.load.shape
    v = _Pieces(
        b.soc0.copy(), np.zeros(homes), np.full((homes, 1), _DEAD_SLOPE), np.zeros((homes, 1))
    )
    feasible = np.ones(homes, dtype=bool)
    merges: list[_Merge] = []
    for t in range(slots):
        h, slot_ok = _slot_function(b, t)
        merged, merge = _merge(v, h)
        merges.append(merge)
        low = b.terminal if t == slots - 1 else b.soc_min
        v, band_ok = _clip(merged, low, b.soc_max)
        feasible &= slot_ok & band_ok
    # The minimum of the final value function: walk up every piece that lowers the cost.
    downhill = np.where(v.slopes < 0, v.lengths, 0.0)
    soc = np.empty((homes, slots))
    soc[:, -1] = v.start + downhill.sum(axis=1)
    optimum = v.value + (np.minimum(v.slopes, 0.0) * v.lengths).sum(axis=1)
    for t in range(slots - 1, 0, -1):
        soc[:, t - 1] = soc[:, t] - _slot_change(merges[t], soc[:, t])
    return soc, optimum, feasible


def _slot_change(merge: _Merge, soc: Vector) -> Vector:
    """Split ``soc`` at the end of a slot into the previous SoC and the slot's change."""
    reach = soc - merge.start
    ends = np.cumsum(merge.lengths, axis=1)
    taken = np.clip(reach[:, None] - (ends - merge.lengths), 0, merge.lengths)
    return np.asarray(merge.start_h + (taken * merge.from_slot).sum(axis=1))


def _flows(b: _Batch, soc: Matrix) -> dict[str, Matrix]:
    """Per-slot flows that realise the SoC path at least cost."""
    dt = b.dt
    change = np.diff(soc, axis=1, prepend=b.soc0[:, None])
    ch = np.clip(change / (b.eta_c[:, None] * dt), 0, b.charge_kw[:, None])
    dis = np.clip(-change * b.eta_d[:, None] / dt, 0, b.discharge_kw[:, None])
    x = b.load - b.pv + ch - dis
    # Exporting pays (or costs nothing): curtail only what the export limit cannot take.
    target = np.where(b.exp_price > 0, -b.export_max[:, None], 0.0)
    grid = np.minimum(
        np.maximum(target, np.maximum(x, -b.export_max[:, None])),
        np.minimum(x + b.pv, b.import_max[:, None]),
    )
    pv_used = np.clip(b.load + ch - dis - grid, 0, b.pv)
    return {
        "ch": ch,
        "dis": dis,
        "imp": np.maximum(grid, 0),
        "exp": np.maximum(-grid, 0),
        "pv": pv_used,
    }


def solve_batch(
    configs: Sequence[Configuration], data: Sequence[HomeData]
) -> list[Solution | None]:
    """Solve homes of one slot count and step together; ``None`` where HiGHS must do it.

    Every home must satisfy `applies`.
    """
    if not configs:
        return []
    b = _Batch.of(configs, data)
    soc, optimum, feasible = _optimal_soc(b)
    flows = _flows(b, soc)
    cost = (
        (flows["imp"] * b.imp_price - flows["exp"] * b.exp_price).sum(axis=1)
        + b.cycle * flows["dis"].sum(axis=1)
    ) * b.dt
    certified = feasible & (np.abs(cost - optimum) <= CERTIFICATE_TOLERANCE * (1 + np.abs(optimum)))
    zeros = np.zeros(soc.shape[1])
    results: list[Solution | None] = []
    for i in range(len(configs)):
        if not certified[i]:
            results.append(None)
            continue
        results.append(
            Solution(
                imp=flows["imp"][i],
                exp=flows["exp"][i],
                ch=flows["ch"][i],
                dis=flows["dis"][i],
                pv=flows["pv"][i],
                soc=soc[i],
                ev=zeros,
                shed=zeros,
                under=zeros,
                over=zeros,
                ev_short_kwh=0.0,
                terminal_short_kwh=0.0,
                level_short_m=0.0,
                device={},
                solved=True,
                solver_status="Optimal",
            )
        )
    return results
