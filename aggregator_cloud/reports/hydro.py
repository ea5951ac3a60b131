"""Hydro compliance: the river level against the licence band, flow, generation per generator,
the level set-point's history and the health of the data link (gaps in telemetry).

What the view reads from a hydro node's samples (per-device readings, `extra.devices`), for each
device of kind `hydro` in its descriptor:

* `level_m` — the upstream river level (m); the band is the device envelope's
  `level_min_m`..`level_max_m` (the licence's, set by the installer);
* `flow_m3_s` — flow through the turbines (m³/s);
* `level_setpoint_m` — the level the controller was told to hold (m);
* `<generator>_power_w` — each generator's output (W); without any, the node's `hydro_w`.

A gap is a silence between consecutive samples (or from the period's start to the first, or the
last to the period's end) longer than GAP_FACTOR times the median sample interval, and at least
MIN_GAP."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import pandas as pd

from aggregator_cloud.store import SqliteStore

GAP_FACTOR: Final = 3
MIN_GAP: Final = timedelta(minutes=1)
POWER_SUFFIX: Final = "_power_w"


class NotAHydro(ValueError):
    """The node is unknown or its descriptor has no hydro device."""


@dataclass(frozen=True)
class Band:
    low_m: float | None
    high_m: float | None

    def outside(self, level: pd.Series) -> pd.Series:
        below = level < self.low_m if self.low_m is not None else False
        above = level > self.high_m if self.high_m is not None else False
        return pd.Series(below | above, index=level.index, dtype=bool)


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class HydroCompliance:
    node: str
    start: datetime
    end: datetime
    band: Band
    level_m: pd.Series
    flow_m3_s: pd.Series
    setpoint_m: pd.Series
    generation_kw: pd.DataFrame
    """One column per generator."""
    gaps: tuple[Gap, ...]

    @property
    def out_of_band(self) -> pd.Series:
        """The level readings outside the licence band."""
        return self.level_m[self.band.outside(self.level_m)]

    @property
    def link_uptime_pct(self) -> float:
        silent = sum((gap.length for gap in self.gaps), timedelta())
        return 100.0 * (1 - silent / (self.end - self.start))


def hydro_devices(store: SqliteStore, node: str) -> list[dict[str, Any]]:
    record = store.node(node)
    devices = ((record.descriptor or {}).get("devices", [])) if record else []
    found = [device for device in devices if device.get("kind") == "hydro"]
    if not found:
        raise NotAHydro(f"node {node!r} has no hydro device in its descriptor")
    return found


def build_compliance(
    store: SqliteStore, node: str, start: datetime, end: datetime
) -> HydroCompliance:
    devices = hydro_devices(store, node)
    device = devices[0]  # one hydro plant per node; its generators are its metrics
    envelope = device.get("envelope", {})
    band = Band(envelope.get("level_min_m"), envelope.get("level_max_m"))
    samples = store.samples(node, start, end, extra=True)
    readings = _device_readings(samples, str(device["id"]))
    generators = sorted(name for name in readings.columns if name.endswith(POWER_SUFFIX))
    if generators:
        generation = readings[generators].rename(columns=lambda name: name[: -len(POWER_SUFFIX)])
    else:
        generation = samples[["hydro_w"]].rename(columns={"hydro_w": "hydro"})
    return HydroCompliance(
        node,
        start,
        end,
        band,
        _column(readings, "level_m"),
        _column(readings, "flow_m3_s"),
        _column(readings, "level_setpoint_m"),
        generation.dropna(how="all") / 1000.0,
        tuple(link_gaps(samples.index, start, end)),
    )


def _device_readings(samples: pd.DataFrame, device: str) -> pd.DataFrame:
    rows = []
    for text in samples["extra"]:
        extra = json.loads(text) if isinstance(text, str) else {}
        rows.append((extra.get("devices") or {}).get(device, {}))
    return pd.DataFrame(rows, index=samples.index, dtype="float64")


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(dtype="float64", index=pd.DatetimeIndex([], tz="UTC"))
    return frame[name].dropna()


def link_gaps(times: pd.Index, start: datetime, end: datetime) -> list[Gap]:
    """Silences in [start, end) longer than the gap threshold (module docstring)."""
    if len(times) == 0:
        return [Gap(start, end)]
    stamps = [pd.Timestamp(start), *pd.DatetimeIndex(times), pd.Timestamp(end)]
    steps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    inner = steps[1:-1]
    typical = pd.Series(inner).median() if inner else pd.Timedelta(MIN_GAP)
    threshold = max(GAP_FACTOR * typical, pd.Timedelta(MIN_GAP))
    return [
        Gap(stamps[index].to_pydatetime(), stamps[index + 1].to_pydatetime())
        for index, step in enumerate(steps)
        if step > threshold
    ]


def figures(view: HydroCompliance) -> dict[str, dict[str, Any]]:
    """Plotly figures (JSON schema dicts) for the page."""
    level: dict[str, Any] = {
        "data": [
            _line(view.level_m, "River level (m)", "#1d3557"),
            _line(view.setpoint_m, "Set-point (m)", "#9d4edd", dash="dot"),
        ],
        "layout": {"title": {"text": "River level against the licence band"}},
    }
    for bound, label in ((view.band.low_m, "licence minimum"), (view.band.high_m, "maximum")):
        if bound is not None:
            level["data"].append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": [view.start.isoformat(), view.end.isoformat()],
                    "y": [bound, bound],
                    "name": f"{label} {bound} m",
                    "line": {"color": "#e63946", "dash": "dash"},
                }
            )
    flow = {
        "data": [_line(view.flow_m3_s, "Flow (m³/s)", "#457b9d")],
        "layout": {"title": {"text": "Flow through the turbines"}},
    }
    generation = {
        "data": [
            _line(view.generation_kw[name].dropna(), f"{name} (kW)", None)
            for name in view.generation_kw.columns
        ],
        "layout": {"title": {"text": "Generation per generator"}},
    }
    return {"level": level, "flow": flow, "generation": generation}


def _line(series: pd.Series, name: str, colour: str | None, dash: str = "solid") -> dict[str, Any]:
    trace: dict[str, Any] = {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": [stamp.isoformat() for stamp in series.index],
        "y": [float(value) for value in series.to_numpy()],
        "line": {"dash": dash},
    }
    if colour:
        trace["line"]["color"] = colour
    return trace
