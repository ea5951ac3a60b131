"""An exact, vectorised solver for the common home: one battery, PV and the grid.

For homes without EV, immersion, hydro or a grid cap, whose start is inside the SoC band and whose
export value never exceeds the import cost, the LP of `fractal.planner.model` without
charging and discharging in the same slot reduces to a one-dimensional problem in the state of
charge ``s``::

    minimise  sum_t H_t(s_t - s_{t-1})   with  soc_min <= s_t <= soc_max,  s_T >= terminal

where ``H_t(d)`` is the cheapest way to change the stored energy by ``d`` in slot ``t``: the
grid, curtailment and the battery's efficiencies and cycle cost folded into one
piecewise-linear function of ``d`` (at most six pieces), convex unless prices are so negative
that wasting energy pays (then the certificate below fails and HiGHS plans the home).

Dynamic programming over ``s`` is then exact: the value function
``V_t = (V_{t-1} infimal-convolution H_t)`` clipped to the SoC band is convex and
piecewise-linear, and the infimal convolution of two such functions is the merge of their pieces
sorted by slope. So each slot is one sort of a few dozen (slope, length) pairs per home, done
for thousands of homes at once in numpy; a backward pass splits each ``s_t`` into
``s_{t-1}`` and the slot's change. No discretisation: the result is the LP optimum up to
rounding.

Each plan comes with a proof or is not used: `solve` checks that its flows cost what its SoC path
costs in the slot functions, and finds prices of stored energy under which it satisfies the
LP's optimality conditions (`_dual_certificate`), which covers what the one-dimensional model
leaves out (charging and discharging together, shedding load, the soft terminal SoC); where only
PV energy may be exported it checks the plan keeps that rule. A home without a proof, or one
`applies` rules out, is left to HiGHS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .model import TERMINAL_PENALTY, Configuration, Vector

Matrix = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

_DEAD_SLOPE = 1e30  # sorts a zero-length piece to the end, where it is trimmed
_ALIVE_KWH = 1e-12  # pieces shorter than this carry no energy worth keeping
# The plan's cost must match its SoC path's cost in the one-dimensional model to this (relative)
# margin.
CERTIFICATE_TOLERANCE = 1e-7


def applies(config: Configuration) -> str | None:
    """``None`` if the fast method covers homes of this configuration, else why not.

    Prices are checked per home by `solve` (a home they rule out is left to HiGHS).
    """
    if config.has_ev:
        return "EV"
    if config.immersion_loss_per_hour is not None or config.hydro is not None:
        return "immersion or hydro"
    if config.has_grid_cap:
        return "grid cap"
    if config.soft_soc_band:
        return "start outside the SoC band"
    if min(config.charge_efficiency, config.discharge_efficiency) <= 0:
        return "zero efficiency"
    return None


@dataclass
class Batch:
    """Homes of one slot count and step, as arrays: (homes,) scalars, (homes, slots) series.

    Prices are the objective's weights per kWh (pence, or pence plus carbon).
    """

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
    terminal: Vector  # at least soc_min
    pv_only_export: Mask  # export only PV energy, now or later from the battery
    green0: Vector  # the part of the starting SoC that came from PV


@dataclass
class Result:
    """Flows per home and slot (kW; SoC in kWh at slot ends) and which homes are proven."""

    imp: Matrix
    exp: Matrix
    ch: Matrix
    dis: Matrix
    pv: Matrix
    soc: Matrix
    certified: Mask  # False: the plan is not proven optimal (or the home is infeasible)


@dataclass
class _SlotFunctions:
    """``H_t`` for every home and slot: convex piecewise-linear in the change of stored energy.

    Pieces that carry no energy get a slope that sorts them last.
    """

    start: Matrix  # (homes, slots) the least change possible (kWh)
    value: Matrix  # (homes, slots) the slot's cost at that change (pence)
    slopes: npt.NDArray[np.float64]  # (homes, slots, 6) pence per kWh stored
    lengths: npt.NDArray[np.float64]  # (homes, slots, 6) kWh stored
    feasible: Mask  # (homes,) every slot can balance within the limits


def _grid_pieces(b: Batch) -> tuple[Matrix, Matrix, Matrix, Matrix, Matrix]:
    """The grid's cost per slot as a function of grid-side energy ``X``, cheapest piece first.

    From ``X0`` (all PV curtailed, exporting at the limit) upwards: taking back curtailed PV
    (free) and exporting less (export price), cheaper first, then importing (import price).
    Returns ``X0`` (homes, slots) and slopes, lengths, begins and ends (homes, slots, 3).
    """
    dt = b.dt
    pv = b.pv * dt
    e_max = np.broadcast_to((b.export_max * dt)[:, None], pv.shape)
    i_max = np.broadcast_to((b.import_max * dt)[:, None], pv.shape)
    x0 = -(pv + e_max)
    # Taking back curtailed PV is free: it goes between the export and import pieces by price.
    exp_price, imp_price = b.exp_price, b.imp_price
    zero = np.zeros_like(pv)
    export_first, import_too = exp_price < 0, imp_price < 0
    slopes = np.stack(
        [
            np.where(export_first, exp_price, zero),
            np.where(import_too, imp_price, np.where(export_first, zero, exp_price)),
            np.where(import_too, zero, imp_price),
        ],
        axis=2,
    )
    lengths = np.stack(
        [
            np.where(export_first, e_max, pv),
            np.where(import_too, i_max, np.where(export_first, pv, e_max)),
            np.where(import_too, pv, i_max),
        ],
        axis=2,
    )
    ends = x0[..., None] + np.cumsum(lengths, axis=2)
    return x0, slopes, lengths, ends - lengths, ends


def _slot_functions(b: Batch) -> _SlotFunctions:
    """``H_t``: the cost of changing the stored energy by ``d`` in slot ``t``.

    In grid-side energy ``X = (load - pv) dt + B`` (``B`` the battery's AC energy, > 0
    charging) the slot costs what `_grid_pieces` says; ``B < 0`` maps to
    ``d = B / eta_d`` and pays the cycle cost; ``B > 0`` maps to ``d = eta_c B``.
    """
    dt = b.dt
    x0, grid_slopes, grid_lengths, begins, ends = _grid_pieces(b)
    a = (b.load - b.pv) * dt  # X with the battery idle
    x_lo = np.maximum(a - (b.discharge_kw * dt)[:, None], x0)
    x_hi = np.minimum(a + (b.charge_kw * dt)[:, None], ends[..., -1])
    feasible: Mask = (x_lo <= x_hi + 1e-9).min(axis=1)
    x_hi = np.maximum(x_hi, x_lo)
    # Each grid piece split at B = 0: the discharging part, then the charging part.
    left_end = np.minimum(a, x_hi)[..., None]
    right_begin = np.maximum(a, x_lo)[..., None]
    left = np.clip(np.minimum(ends, left_end) - np.maximum(begins, x_lo[..., None]), 0, None)
    right = np.clip(np.minimum(ends, x_hi[..., None]) - np.maximum(begins, right_begin), 0, None)
    eta_c, eta_d = b.eta_c[:, None, None], b.eta_d[:, None, None]
    slopes = np.concatenate(
        [eta_d * (grid_slopes - b.cycle[:, None, None]), grid_slopes / eta_c], 2
    )
    lengths = np.concatenate([left / eta_d, right * eta_c], axis=2)
    slopes = np.where(lengths > _ALIVE_KWH, slopes, _DEAD_SLOPE)
    below = x_lo - a  # B at the domain start
    start = np.where(below < 0, below / b.eta_d[:, None], below * b.eta_c[:, None])
    covered = np.clip(x_lo[..., None] - begins, 0, grid_lengths)
    grid_value = -b.exp_price * b.export_max[:, None] * dt + (grid_slopes * covered).sum(axis=2)
    value = grid_value + b.cycle[:, None] * np.maximum(-below, 0)
    return _SlotFunctions(start, value, slopes, lengths, feasible)


@dataclass
class _Merge:
    """What the backward pass needs of one slot's merge: pieces sorted by slope, unclipped."""

    start: Vector
    ends: Matrix  # where each merged piece ends (kWh stored)
    lengths: Matrix
    from_slot: Mask  # the piece came from H_t (not from V_{t-1})


def _optimal_soc(b: Batch, h: _SlotFunctions) -> tuple[Matrix, Mask]:
    """SoC at each slot end and which homes were feasible.

    ``V_t``, the least cost of reaching each SoC at the end of slot ``t``, is kept as a start,
    its value there and pieces (slope, length) sorted by slope. ``V_{t-1}`` infimal-convolved
    with ``H_t`` is the sorted merge of their pieces; clipping to the SoC band empties pieces at
    both ends, which get a slope that sorts them out of the next merge.
    """
    homes, slots = b.load.shape
    rows = np.arange(homes)[:, None]
    start: Vector = b.soc0.copy()
    slopes: Matrix = np.full((homes, 1), _DEAD_SLOPE)
    lengths: Matrix = np.zeros((homes, 1))
    # Where each V_t's domain begins and ends before clipping: it must meet the band.
    lowest, highest = np.empty((homes, slots)), np.empty((homes, slots))
    merges: list[_Merge] = []
    alive_pieces = 0  # the most pieces any home's V_t carries
    for t in range(slots):
        all_slopes = np.concatenate([slopes, h.slopes[:, t]], axis=1)
        width = all_slopes.shape[1]
        # Dead pieces sort last: keep only as many columns as can be alive.
        order = np.argsort(all_slopes, axis=1)[:, : alive_pieces + h.slopes.shape[2]]
        flat = order + rows * width  # one flat index for both gathers: quicker than [rows, order]
        all_slopes = np.take(all_slopes, flat)
        all_lengths = np.take(np.concatenate([lengths, h.lengths[:, t]], axis=1), flat)
        from_slot = order >= slopes.shape[1]
        start = start + h.start[:, t]
        ends = start[:, None] + np.cumsum(all_lengths, axis=1)
        merges.append(_Merge(start, ends, all_lengths, from_slot))
        low = b.terminal if t == slots - 1 else b.soc_min
        high = b.soc_max
        lowest[:, t], highest[:, t] = start, ends[:, -1]
        begins = ends - all_lengths
        kept = np.clip(np.minimum(ends, high[:, None]) - np.maximum(begins, low[:, None]), 0, None)
        start = np.minimum(np.maximum(start, low), high)
        alive = kept > _ALIVE_KWH
        slopes = np.where(alive, all_slopes, _DEAD_SLOPE)
        lengths = np.where(alive, kept, 0.0)
        alive_pieces = int(np.count_nonzero(alive, axis=1).max())
    band_low = np.repeat(b.soc_min[:, None], slots, axis=1)
    band_low[:, -1] = b.terminal
    tol = 1e-9
    feasible = h.feasible & (b.terminal <= b.soc_max + tol) & (b.soc_min <= b.soc_max + tol)
    feasible &= (lowest <= b.soc_max[:, None] + tol).min(axis=1)
    feasible &= (highest >= band_low - tol).min(axis=1)
    # The minimum of the final value function: walk up every piece that lowers the cost.
    downhill = np.where(slopes < 0, lengths, 0.0)
    soc = np.empty((homes, slots))
    soc[:, -1] = start + downhill.sum(axis=1)
    for t in range(slots - 1, 0, -1):
        soc[:, t - 1] = soc[:, t] - _slot_change(merges[t], h.start[:, t], soc[:, t])
    return soc, feasible


def _path_cost(h: _SlotFunctions, soc: Matrix, soc0: Vector) -> Vector:
    """``sum_t H_t(s_t - s_{t-1})``: what the SoC path costs in the one-dimensional model."""
    change = np.diff(soc, axis=1, prepend=soc0[:, None])
    position = (change - h.start)[..., None]
    ends = np.cumsum(h.lengths, axis=2)
    used = np.clip(position - (ends - h.lengths), 0, h.lengths)
    slopes = np.where(h.lengths > _ALIVE_KWH, h.slopes, 0.0)
    return np.asarray((h.value + (slopes * used).sum(axis=2)).sum(axis=1))


def _slot_change(merge: _Merge, start_h: Vector, soc: Vector) -> Vector:
    """Split ``soc`` at the end of a slot into the previous SoC and the slot's change."""
    taken = np.clip(soc[:, None] - (merge.ends - merge.lengths), 0, merge.lengths)
    return np.asarray(start_h + (taken * merge.from_slot).sum(axis=1))


def _dual_certificate(b: Batch, h: _SlotFunctions, soc: Matrix) -> Mask:
    """Homes whose plan provably solves the LP of `fractal.planner.model`: prices ``lambda_t``
    of stored energy that make it optimal there (the KKT conditions), or ``False``.

    The plan is optimal if, for some ``lambda``,

    * each slot's change ``d_t`` minimises ``H_t(d) - lambda_t d``: ``lambda_t`` lies between
      every slope of ``H_t`` left of ``d_t`` and every slope right of it;
    * each SoC ``s_t`` minimises ``(lambda_t - lambda_{t+1}) s_t`` over its band
      (``lambda_{T+1} = 0``): equal prices where ``s_t`` is inside the band, rising into a
      full battery, falling into an empty one;
    * what the LP can do and ``H_t`` leaves out does not pay at ``lambda_t``: charging and
      discharging together (``cycle + lambda_t (1 / eta_d - eta_c) >= 0``), shedding load or
      falling short of the terminal SoC (``|lambda_t|`` below the penalties).

    Weak duality then bounds the LP's optimum from below by the plan's own cost.
    """
    homes, slots = soc.shape
    change = np.diff(soc, axis=1, prepend=b.soc0[:, None])
    position = (change - h.start)[..., None]
    ends = np.cumsum(h.lengths, axis=2)
    alive = h.lengths > _ALIVE_KWH
    slopes = np.where(alive, h.slopes, np.nan)
    tol = 1e-9
    left = np.where(alive & (ends - h.lengths < position - tol), slopes, -np.inf).max(axis=2)
    right = np.where(alive & (ends > position + tol), slopes, np.inf).min(axis=2)
    # Where charging and discharging together, or shedding load, would pay.
    waste = 1 / b.eta_d - b.eta_c
    floor = np.where(waste > 0, -b.cycle / np.where(waste > 0, waste, 1.0), -np.inf)
    low = np.maximum(left, np.maximum(floor, -TERMINAL_PENALTY)[:, None])
    high = np.minimum(right, TERMINAL_PENALTY)
    band_low = np.repeat(b.soc_min[:, None], slots, axis=1)
    band_low[:, -1] = b.terminal
    full = soc >= b.soc_max[:, None] - tol
    empty = soc <= band_low + tol
    ok = np.ones(homes, dtype=bool)
    # Backward: the prices each slot may take, given what the later slots allow.
    later_low, later_high = np.zeros(homes), np.zeros(homes)
    for t in range(slots - 1, -1, -1):
        # A band of zero width (full and empty at once) puts no condition on the price.
        allowed_low = np.where(empty[:, t] & ~full[:, t], later_low, -np.inf)
        allowed_high = np.where(full[:, t] & ~empty[:, t], later_high, np.inf)
        inside = ~full[:, t] & ~empty[:, t]
        allowed_low = np.where(inside, later_low, allowed_low)
        allowed_high = np.where(inside, later_high, allowed_high)
        low[:, t] = np.maximum(low[:, t], allowed_low)
        high[:, t] = np.minimum(high[:, t], allowed_high)
        ok &= low[:, t] <= high[:, t] + tol
        later_low, later_high = low[:, t], high[:, t]
    del later_low, later_high
    # Any price of the first slot's range then has a consistent continuation (see above);
    # the ranges being non-empty is the certificate.
    return np.asarray(ok)


def _green_export(b: Batch, flows: dict[str, Matrix]) -> Mask:
    """Homes whose plan exports only PV energy where they must (`HomeModel._add_green_account`).

    The plan is solved without that rule, a relaxation: where it keeps the rule anyway it is
    optimal with it too. The account is kept greedily, as green as possible: PV charges the
    battery first and discharge draws green energy first.
    """
    dt, slack = b.dt, 1e-7
    green = b.green0.copy()
    ok = np.ones(len(green), dtype=bool)
    for t in range(b.load.shape[1]):
        ch_pv = np.minimum(flows["ch"][:, t], flows["pv"][:, t])
        dis_green = np.minimum(flows["dis"][:, t], green * b.eta_d / dt)
        ok &= flows["exp"][:, t] <= flows["pv"][:, t] - ch_pv + dis_green + slack
        green = np.maximum(green + (ch_pv * b.eta_c - dis_green / b.eta_d) * dt, 0.0)
    return np.asarray(ok | ~b.pv_only_export)


def _flows(b: Batch, soc: Matrix) -> dict[str, Matrix]:
    """Per-slot flows that realise the SoC path at least cost."""
    dt = b.dt
    change = np.diff(soc, axis=1, prepend=b.soc0[:, None])
    ch = np.clip(change / (b.eta_c[:, None] * dt), 0, b.charge_kw[:, None])
    dis = np.clip(-change * b.eta_d[:, None] / dt, 0, b.discharge_kw[:, None])
    x = b.load - b.pv + ch - dis
    # The grid flow the prices prefer: export all it can where that pays, import all it can
    # where importing pays, else nothing; curtailment and the battery's plan bound it.
    target = np.where(
        b.exp_price > 0,
        -b.export_max[:, None],
        np.where(b.imp_price < 0, b.import_max[:, None], 0.0),
    )
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


def solve(b: Batch) -> Result:
    """Plan every home of the batch; `Result.certified` says which plans are proven optimal.

    Homes whose export value exceeds the import cost somewhere (a non-convex grid cost) or whose
    prices pass the penalty for a short terminal SoC are not certified.
    """
    h = _slot_functions(b)
    soc, feasible = _optimal_soc(b, h)
    flows = _flows(b, soc)
    optimum = _path_cost(h, soc, b.soc0)
    cost = (
        (flows["imp"] * b.imp_price - flows["exp"] * b.exp_price).sum(axis=1)
        + b.cycle * flows["dis"].sum(axis=1)
    ) * b.dt
    consistent = np.abs(cost - optimum) <= CERTIFICATE_TOLERANCE * (1 + np.abs(optimum))
    prices_ok = (
        np.isfinite(b.imp_price).min(axis=1)
        & np.isfinite(b.exp_price).min(axis=1)
        & (b.exp_price <= b.imp_price).min(axis=1)
        & (np.abs(b.imp_price).max(axis=1) / b.eta_c < TERMINAL_PENALTY)
        & (b.cycle >= 0)
    )
    certified = prices_ok & feasible & consistent
    certified &= _dual_certificate(b, h, soc) & _green_export(b, flows)
    return Result(
        imp=flows["imp"],
        exp=flows["exp"],
        ch=flows["ch"],
        dis=flows["dis"],
        pv=flows["pv"],
        soc=soc,
        certified=np.asarray(certified),
    )
