"""The dashboard of any node or tag group over a period: the query layer the pages call.

`build_dashboard(store, subject, period, now=...)` reads the incremental rollup (never the
members' samples) and returns plain numbers and frames; `figures.py` turns them into charts.
Energy is mean power x time: each 5-minute bucket's mean power over the whole bucket.
Methods (load, PV use, carbon, peaks) are explained in docs/views.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd

from aggregator_cloud.store import SqliteStore

from . import rollup
from .carbon import intensity_at
from .flows import FLOW_COLUMNS

BUCKET: Final = timedelta(seconds=rollup.STEP_SECONDS)
HOURS_PER_BUCKET: Final = rollup.STEP_SECONDS / 3600
MAX_PERIOD: Final = timedelta(days=31)
WINDOW: Final = timedelta(hours=1)
"""Length of a best window for a discretionary load (a dishwasher, an immersion boost)."""
WINDOWS: Final = 3
LOOKAHEAD: Final = timedelta(hours=24)
MEMBER_COLUMNS: Final = (
    "demand_w",
    "generation_w",
    "import_w",
    "export_w",
    "charge_w",
    "discharge_w",
)


@dataclass(frozen=True)
class Subject:
    """A node, or a tag group (key=value), which is a node too."""

    node: str | None = None
    group: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if (self.node is None) == (self.group is None):
            raise ValueError("a subject is either a node or a group")

    @property
    def label(self) -> str:
        return self.node if self.node is not None else "=".join(self.group or ())


@dataclass(frozen=True)
class Period:
    """[start, end), both on bucket boundaries."""

    start: datetime
    end: datetime

    @classmethod
    def of(
        cls, name: str, now: datetime, start: datetime | None = None, end: datetime | None = None
    ) -> Period:
        """`day` or `week` up to now, or `custom` from `start` to `end`."""
        if name == "day":
            return cls.between(now - timedelta(days=1), now)
        if name == "week":
            return cls.between(now - timedelta(days=7), now)
        if name == "custom":
            if start is None or end is None:
                raise ValueError("a custom period needs a start and an end")
            return cls.between(start, end)
        raise ValueError(f"period must be day, week or custom, not {name!r}")

    @classmethod
    def between(cls, start: datetime, end: datetime) -> Period:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("period times need a UTC offset")
        first, last = _floor(start), _ceil(end)
        if last <= first:
            raise ValueError("the period's end must be after its start")
        if last - first > MAX_PERIOD:
            raise ValueError(f"a period is at most {MAX_PERIOD.days} days")
        return cls(first, last)

    @property
    def display_step(self) -> timedelta:
        """Chart resolution: 5 minutes up to 2 days, 30 minutes up to 2 weeks, else 2 hours."""
        length = self.end - self.start
        if length <= timedelta(days=2):
            return BUCKET
        return timedelta(minutes=30) if length <= timedelta(days=14) else timedelta(hours=2)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    intensity: float | None
    """Mean grid gCO₂/kWh in the window (None: unknown)."""
    surplus_share: float
    """Share of the window in which the plan expects export (spare generation)."""


@dataclass
class Dashboard:
    subject: Subject
    period: Period
    buckets: pd.DataFrame
    """Per 5-minute bucket: mean FLOW_COLUMNS (W), soc_pct, nodes, grid_intensity (gCO₂/kWh),
    expected_grid_w (the plans' expectation, W)."""
    now: dict[str, float] = field(default_factory=dict)
    """The latest bucket's mean flows (W) and `nodes`; empty without data."""
    now_ts: datetime | None = None
    energy_wh: dict[str, float] = field(default_factory=dict)
    """Each flow's energy over the period, keyed by the flow's name with `_wh` for `_w`."""
    carbon: dict[str, float] = field(default_factory=dict)
    plan: dict[str, float] = field(default_factory=dict)
    windows: list[Window] = field(default_factory=list)
    peaks: dict[str, Any] = field(default_factory=dict)
    members: pd.DataFrame | None = None
    """Groups only: per member, energy (Wh) of MEMBER_COLUMNS, name, share of the import."""

    @property
    def demand_met_wh(self) -> dict[str, float]:
        return {
            "pv": self.energy_wh.get("gen_to_demand_wh", 0.0),
            "battery": self.energy_wh.get("battery_to_demand_wh", 0.0),
            "grid": self.energy_wh.get("grid_to_demand_wh", 0.0),
        }

    @property
    def pv_use_wh(self) -> dict[str, float]:
        return {
            "self_consumed": self.energy_wh.get("gen_to_demand_wh", 0.0),
            "battery": self.energy_wh.get("gen_to_battery_wh", 0.0),
            "exported": self.energy_wh.get("gen_export_wh", 0.0),
        }


def build_dashboard(
    store: SqliteStore,
    subject: Subject,
    period: Period,
    *,
    now: datetime,
    intensity: pd.Series | None = None,
) -> Dashboard:
    """The dashboard from the rollup (refreshed first: only samples new since the last
    refresh are read). `intensity`: the grid's gCO₂/kWh series (carbon.load_intensity)."""
    rollup.refresh(store)
    buckets = _buckets(store, subject, period.start, period.end)
    nodes = _member_nodes(store, subject)
    expected = expected_grid(store, nodes, period.start, max(period.end, now + LOOKAHEAD))
    grid_intensity = _intensity(intensity, period.start, max(period.end, now + LOOKAHEAD))
    buckets["grid_intensity"] = grid_intensity.reindex(buckets.index)
    buckets["expected_grid_w"] = expected.reindex(buckets.index)
    board = Dashboard(subject, period, buckets)
    board.energy_wh = {
        name.removesuffix("_w") + "_wh": float(buckets[name].sum() * HOURS_PER_BUCKET)
        for name in FLOW_COLUMNS
    }
    _fill_now(board)
    board.carbon = _carbon(buckets)
    board.plan = _plan_accuracy(buckets)
    board.peaks = _peaks(buckets)
    board.windows = best_windows(now, grid_intensity, expected)
    if subject.group is not None:
        board.members = _members(store, subject.group, period)
    return board


def _buckets(store: SqliteStore, subject: Subject, start: datetime, end: datetime) -> pd.DataFrame:
    if subject.group is not None:
        return rollup.group_buckets(store, *subject.group, start, end)
    assert subject.node is not None
    return rollup.node_buckets(store, subject.node, start, end)


def _member_nodes(store: SqliteStore, subject: Subject) -> list[str]:
    if subject.node is not None:
        return [subject.node]
    return [record.node for record in store.nodes(tag=subject.group)]


def _fill_now(board: Dashboard) -> None:
    reported = board.buckets[board.buckets["nodes"] > 0]
    if reported.empty:
        return
    latest = reported.iloc[-1]
    board.now_ts = reported.index[-1].to_pydatetime()
    board.now = {name: float(latest[name]) for name in (*FLOW_COLUMNS, "nodes")}
    if not np.isnan(latest["soc_pct"]):
        board.now["soc_pct"] = float(latest["soc_pct"])


def _carbon(buckets: pd.DataFrame) -> dict[str, float]:
    """Over the buckets with a known grid intensity: what was emitted (imports at the grid's
    intensity), what the same demand would have emitted from the grid alone, and the CO₂
    avoided: (demand - grid) x intensity, exports counted as displacing grid generation."""
    known = buckets[buckets["grid_intensity"].notna() & (buckets["nodes"] > 0)]
    if known.empty:
        return {}
    intensity = known["grid_intensity"]
    kwh = HOURS_PER_BUCKET / 1000
    demand_kwh = float(known["demand_w"].sum() * kwh)
    emitted = float((known["import_w"] * intensity).sum() * kwh)
    grid_only = float((known["demand_w"] * intensity).sum() * kwh)
    avoided = float(((known["demand_w"] - known["grid_w"]) * intensity).sum() * kwh)
    covered = len(known) / max(1, int((buckets["nodes"] > 0).sum()))
    result = {"emitted_g": emitted, "avoided_g": avoided, "covered_share": covered}
    if demand_kwh > 0:
        result["node_intensity"] = emitted / demand_kwh
        result["grid_intensity"] = grid_only / demand_kwh
    return result


def _plan_accuracy(buckets: pd.DataFrame) -> dict[str, float]:
    both = buckets[buckets["expected_grid_w"].notna() & (buckets["nodes"] > 0)]
    if both.empty:
        return {}
    error = both["grid_w"] - both["expected_grid_w"]
    kwh = HOURS_PER_BUCKET / 1000
    return {
        "expected_import_kwh": float(both["expected_grid_w"].clip(lower=0).sum() * kwh),
        "actual_import_kwh": float(both["import_w"].sum() * kwh),
        "mean_abs_error_w": float(error.abs().mean()),
        "covered_share": len(both) / max(1, int((buckets["nodes"] > 0).sum())),
    }


def _peaks(buckets: pd.DataFrame) -> dict[str, Any]:
    """Highest 5-minute mean grid import with coordination (as measured) and without (the
    baseline: the same demand and generation with every battery idle, grid - battery)."""
    reported = buckets[buckets["nodes"] > 0]
    if reported.empty:
        return {}
    baseline = reported["grid_w"] - reported["battery_w"]
    times = reported.index
    return {
        "with_w": float(reported["grid_w"].max()),
        "with_ts": times[int(reported["grid_w"].to_numpy().argmax())].to_pydatetime(),
        "without_w": float(baseline.max()),
        "without_ts": times[int(baseline.to_numpy().argmax())].to_pydatetime(),
    }


def _members(store: SqliteStore, group: tuple[str, str], period: Period) -> pd.DataFrame:
    energy = rollup.member_energy(store, group, period.start, period.end, columns=MEMBER_COLUMNS)
    energy.columns = [name.removesuffix("_w") + "_wh" for name in energy.columns]
    records = {record.node: record for record in store.nodes(tag=group)}
    frame = energy.reindex(sorted(records)).fillna(0.0)
    frame["name"] = [records[node].name or "" for node in frame.index]
    total = frame["import_wh"].sum()
    frame["import_share"] = frame["import_wh"] / total if total > 0 else 0.0
    return frame


# --- plans and windows ----------------------------------------------------------------------


def expected_grid(
    store: SqliteStore, nodes: Sequence[str], start: datetime, end: datetime
) -> pd.Series:
    """The grid power the plans expected, summed over `nodes`, per 5-minute bucket in
    [start, end). For each node and instant the latest-issued plan covering it counts (a new
    plan supersedes the old from its start); a slot's value holds for each bucket in it."""
    pieces = []
    for plan in store.plans(nodes, start, end):
        values = (plan["expected"] or {}).get("grid_w")
        if not values:
            continue
        expanded = _slot_buckets(plan, values)
        pieces.append(expanded.assign(node=plan["node"], issued=plan["issued"]))
    if not pieces:
        return pd.Series(dtype="float64")
    frame = pd.concat(pieces)
    frame = frame[(frame["ts"] >= start) & (frame["ts"] < end)]
    latest = frame.sort_values("issued").drop_duplicates(["node", "ts"], keep="last")
    return latest.groupby("ts")["expected"].sum(min_count=1).sort_index()


def _slot_buckets(plan: Mapping[str, Any], values: Sequence[float | None]) -> pd.DataFrame:
    step = int(plan["step"])
    per_slot = max(1, step // rollup.STEP_SECONDS)
    first = pd.Timestamp(_floor(plan["start"]))
    offsets = np.arange(len(values) * per_slot) * rollup.STEP_SECONDS
    times = first + pd.to_timedelta(offsets, unit="s")
    expected = np.repeat(np.array([np.nan if v is None else v for v in values], float), per_slot)
    frame = pd.DataFrame({"ts": times, "expected": expected}).dropna()
    return frame[frame["ts"] < pd.Timestamp(plan["end"])]


def best_windows(now: datetime, intensity: pd.Series, expected: pd.Series) -> list[Window]:
    """Up to WINDOWS non-overlapping hours in the next LOOKAHEAD to run a discretionary load:
    the hours when the plans expect spare generation (export) come first, then the lowest
    grid carbon intensity. Empty when neither is known ahead."""
    times = pd.date_range(_ceil(now), _ceil(now) + LOOKAHEAD, freq=BUCKET, inclusive="left")
    carbon = intensity.reindex(times)
    surplus = (expected.reindex(times) < 0).astype("float64").where(expected.reindex(times).notna())
    if carbon.isna().all() and surplus.isna().all():
        return []
    size = int(WINDOW / BUCKET)
    # Lower is better: spare generation is free of grid carbon, so it outranks any intensity;
    # a bucket where neither is known is never part of a window.
    cost = carbon.where(surplus.fillna(0) < 1, 0.0)
    rolling = cost.rolling(size, min_periods=size).mean().shift(-(size - 1)).dropna()
    chosen: list[Window] = []
    for start in rolling.sort_values(kind="stable").index:
        end = start + WINDOW
        if any(start < other.end and other.start < end for other in chosen):
            continue
        inside = slice(start, end - BUCKET)
        mean_carbon = carbon.loc[inside].mean()
        chosen.append(
            Window(
                start.to_pydatetime(),
                end.to_pydatetime(),
                None if np.isnan(mean_carbon) else float(mean_carbon),
                float(surplus.loc[inside].fillna(0).mean()),
            )
        )
        if len(chosen) == WINDOWS:
            break
    return sorted(chosen, key=lambda window: window.start)


def _intensity(series: pd.Series | None, start: datetime, end: datetime) -> pd.Series:
    times = pd.date_range(start, end, freq=BUCKET, inclusive="left")
    if series is None:
        return pd.Series(np.nan, index=times, dtype="float64")
    # The intensity at the middle of each bucket: a bucket straddles no half-hour boundary.
    middles = pd.DatetimeIndex(times + BUCKET / 2)
    return pd.Series(intensity_at(series, middles).to_numpy(), index=times, dtype="float64")


def _floor(when: datetime) -> datetime:
    seconds = int(when.timestamp()) // rollup.STEP_SECONDS * rollup.STEP_SECONDS
    return datetime.fromtimestamp(seconds, UTC)


def _ceil(when: datetime) -> datetime:
    floor = _floor(when)
    return floor if floor == when else floor + BUCKET
