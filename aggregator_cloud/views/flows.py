"""Energy flows derived from each telemetry sample, the same way for every node.

The split itself is the library's (`fractal.energy_split`, shared with the Home Assistant
panel): demand = grid + pv + hydro - battery (every load, EV and immersion included;
`household_w` is demand without them); generation serves demand first, then the battery, then
export; demand is met by generation, then the battery, then the grid. Every split is computed per
sample (10 s), before anything is averaged, so a cloud passing in a 5-minute bucket is not
smoothed away. A sample without `grid_w` has no balance: its flows are unknown (NaN) and it is
not counted in them; a device the node does not report (no battery, no EV) counts as 0 W."""

from __future__ import annotations

from typing import Final

import pandas as pd
from fractal.energy_split import SPLIT_FLOWS, split

MEASURED: Final = ("grid_w", "pv_w", "battery_w", "ev_w", "immersion_w", "hydro_w")
"""Reported powers carried into the rollup as they are (their mean per bucket)."""
DERIVED: Final = SPLIT_FLOWS
"""Flows split per sample (W, all >= 0)."""
FLOW_COLUMNS: Final = (*MEASURED, *DERIVED)


def derive(samples: pd.DataFrame) -> pd.DataFrame:
    """The FLOW_COLUMNS of each sample (same index): the measured powers with absent devices
    as 0 W, and the derived flows; rows without `grid_w` are all NaN."""
    power = {name: samples[name].to_numpy(dtype="float64") for name in MEASURED}
    flows = split(
        power["grid_w"],
        power["pv_w"],
        power["battery_w"],
        ev=power["ev_w"],
        immersion=power["immersion_w"],
        hydro=power["hydro_w"],
    )
    frame = pd.DataFrame(
        {**{name: samples[name].fillna(0.0) for name in MEASURED}, **flows}, index=samples.index
    )
    frame.loc[samples["grid_w"].isna().to_numpy()] = float("nan")
    return frame
