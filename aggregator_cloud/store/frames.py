"""Telemetry as pandas frames, and the sums that make a tag group look like one node.

A node's samples frame: index `ts` (UTC), columns `seq` and FIELDS. Resampled telemetry
(of a node or of a group) has index `ts` (bucket start, aligned to the Unix epoch) and
columns FIELDS plus `nodes`, the number of members that reported in the bucket."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Final

import pandas as pd

POWER_FIELDS: Final = (
    "grid_w",
    "pv_w",
    "battery_w",
    "load_w",
    "ev_w",
    "immersion_w",
    "hydro_w",
)
FIELDS: Final = (*POWER_FIELDS, "soc_pct")
RESAMPLED_COLUMNS: Final = (*FIELDS, "nodes")


def empty_resampled() -> pd.DataFrame:
    index = pd.DatetimeIndex([], tz="UTC", name="ts")
    return pd.DataFrame(
        {column: pd.Series([], dtype="float64") for column in RESAMPLED_COLUMNS}, index=index
    ).astype({"nodes": "int64"})


def group_totals(
    samples: pd.DataFrame, step: timedelta, capacities_wh: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Sum the members' telemetry per bucket of `step`.

    `samples` is a long frame with columns `node`, `ts` and FIELDS. Each member's power is
    averaged over the bucket (mean power), then the members' means are added. The state of
    charge is the members' mean, weighted by battery capacity when every member reporting
    one has a known capacity, else unweighted. Buckets without samples are left out."""
    if samples.empty:
        return empty_resampled()
    bucketed = samples.assign(ts=samples["ts"].dt.floor(pd.Timedelta(step)))
    per_member = bucketed.groupby(["node", "ts"])[list(FIELDS)].mean()
    totals = per_member[list(POWER_FIELDS)].groupby(level="ts").sum(min_count=1)
    totals["soc_pct"] = _mean_soc(per_member["soc_pct"], capacities_wh or {})
    totals["nodes"] = per_member.groupby(level="ts").size()
    return totals.sort_index()


def _mean_soc(soc: pd.Series, capacities_wh: Mapping[str, float]) -> pd.Series:
    reported = soc.dropna().reset_index()
    if reported.empty:
        return pd.Series(dtype="float64")
    weights = reported["node"].map(capacities_wh).astype("float64")
    if weights.isna().any() or (weights <= 0).any():
        weights = pd.Series(1.0, index=reported.index)
    reported["weighted"] = reported["soc_pct"] * weights
    reported["weight"] = weights
    sums = reported.groupby("ts")[["weighted", "weight"]].sum()
    return sums["weighted"] / sums["weight"]
