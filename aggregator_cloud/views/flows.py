"""Energy flows derived from one telemetry sample, the same way for every node.

Signs as in the protocol (DESIGN §3): `grid_w` > 0 imports, `battery_w` > 0 charges, the rest
are >= 0. A node reports what its meters measure; what its loads drew is derived from the
energy balance at the meter, which holds whatever the node's devices are:

    demand = grid + pv + hydro - battery          (everything the site consumed, W, >= 0)

so demand includes the EV charger and the immersion heater; `household_w` is demand without
them. Generation (PV and hydro) goes first to the site's demand, then into the battery, and
the rest is exported; demand is met by generation first, then by the battery, then by the
grid. Every split is computed per sample (10 s), before anything is averaged, so a cloud
passing in a 5-minute bucket is not smoothed away. A sample without `grid_w` has no balance:
its derived flows are unknown (NaN) and it is not counted in them; a device the node does not
report (no battery, no EV) counts as 0 W."""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

MEASURED: Final = ("grid_w", "pv_w", "battery_w", "ev_w", "immersion_w", "hydro_w")
"""Reported powers carried into the rollup as they are (their mean per bucket)."""
DERIVED: Final = (
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
"""Flows split per sample (W, all >= 0)."""
FLOW_COLUMNS: Final = (*MEASURED, *DERIVED)


def derive(samples: pd.DataFrame) -> pd.DataFrame:
    """The FLOW_COLUMNS of each sample (same index): the measured powers with absent devices
    as 0 W, and the derived flows; rows without `grid_w` are all NaN."""
    known = samples["grid_w"].notna()
    power = {name: samples[name].fillna(0.0).to_numpy(dtype="float64") for name in MEASURED}
    grid, battery = power["grid_w"], power["battery_w"]
    generation = np.maximum(power["pv_w"], 0.0) + np.maximum(power["hydro_w"], 0.0)
    demand = np.maximum(grid + generation - battery, 0.0)
    charge, discharge = np.maximum(battery, 0.0), np.maximum(-battery, 0.0)
    gen_to_demand = np.minimum(generation, demand)
    gen_to_battery = np.minimum(generation - gen_to_demand, charge)
    battery_to_demand = np.minimum(discharge, demand - gen_to_demand)
    flows = {
        **power,
        "import_w": np.maximum(grid, 0.0),
        "export_w": np.maximum(-grid, 0.0),
        "charge_w": charge,
        "discharge_w": discharge,
        "generation_w": generation,
        "demand_w": demand,
        "household_w": np.maximum(demand - power["ev_w"] - power["immersion_w"], 0.0),
        "gen_to_demand_w": gen_to_demand,
        "gen_to_battery_w": gen_to_battery,
        "gen_export_w": generation - gen_to_demand - gen_to_battery,
        "battery_to_demand_w": battery_to_demand,
        "grid_to_demand_w": demand - gen_to_demand - battery_to_demand,
    }
    frame = pd.DataFrame(flows, index=samples.index)
    frame.loc[~known] = np.nan
    return frame
