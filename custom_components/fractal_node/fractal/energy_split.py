"""Where each watt of a node came from and went to, per sample: one method for the aggregator's
dashboards and the Home Assistant panel (docs/views.md).

Signs as in the protocol: `grid` > 0 imports, `battery` > 0 charges, the rest are >= 0. The
site's demand (every load, the EV and the immersion heater included) is the balance at the
meter: demand = grid + pv + hydro - battery. Generation (PV and hydro) serves the demand first,
then charges the battery, and the rest is exported; demand is met by generation, then by the
battery, then by the grid. Inputs are equal-length arrays; NaN in `grid` makes that sample's
flows NaN (no balance without the meter); NaN elsewhere counts as 0 W (no such device)."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

Watts = npt.NDArray[np.float64]

SPLIT_FLOWS: Final = (
    "import_w",
    "export_w",
    "charge_w",
    "discharge_w",
    "generation_w",
    "demand_w",
    "household_w",
    "gen_to_demand_w",
    "gen_to_battery_w",
    "gen_export_w",
    "battery_to_demand_w",
    "grid_to_demand_w",
)


def split(
    grid: Watts,
    pv: Watts,
    battery: Watts,
    *,
    ev: Watts | None = None,
    immersion: Watts | None = None,
    hydro: Watts | None = None,
) -> dict[str, Watts]:
    """Each of SPLIT_FLOWS per sample, W (>= 0; NaN where `grid` is NaN)."""
    zero = np.zeros_like(grid, dtype=np.float64)
    known = ~np.isnan(grid)
    grid_w = np.where(known, grid, 0.0)
    battery_w = np.nan_to_num(battery)
    generation = np.maximum(np.nan_to_num(pv), 0.0) + np.maximum(
        np.nan_to_num(zero if hydro is None else hydro), 0.0
    )
    demand = np.maximum(grid_w + generation - battery_w, 0.0)
    charge, discharge = np.maximum(battery_w, 0.0), np.maximum(-battery_w, 0.0)
    gen_to_demand = np.minimum(generation, demand)
    gen_to_battery = np.minimum(generation - gen_to_demand, charge)
    battery_to_demand = np.minimum(discharge, demand - gen_to_demand)
    controlled = np.nan_to_num(zero if ev is None else ev) + np.nan_to_num(
        zero if immersion is None else immersion
    )
    flows = {
        "import_w": np.maximum(grid_w, 0.0),
        "export_w": np.maximum(-grid_w, 0.0),
        "charge_w": charge,
        "discharge_w": discharge,
        "generation_w": generation,
        "demand_w": demand,
        "household_w": np.maximum(demand - controlled, 0.0),
        "gen_to_demand_w": gen_to_demand,
        "gen_to_battery_w": gen_to_battery,
        "gen_export_w": generation - gen_to_demand - gen_to_battery,
        "battery_to_demand_w": battery_to_demand,
        "grid_to_demand_w": demand - gen_to_demand - battery_to_demand,
    }
    return {name: np.where(known, values, np.nan) for name, values in flows.items()}
