"""The grid's carbon intensity, from a file in the National Grid ESO carbon-intensity API's shape.

The API (https://api.carbonintensity.org.uk, CC BY 4.0) gives half-hourly gCO₂/kWh:

* national (`/intensity/{from}/{to}`): `{"data": [{"from", "to", "intensity": {"forecast",
  "actual", "index"}}]}`;
* regional (`/regional/intensity/{from}/{to}/regionid/{id}` or `/postcode/{outcode}`):
  `{"data": {"regionid", "shortname", "data": [{"from", "to", "intensity": {"forecast",
  "index"}, "generationmix"}]}}` (a list of such regions is accepted too: the first is used).

The aggregator has no internet in every deployment, so it reads a saved response from a file
(`fractal-aggregator serve --carbon-intensity FILE`, refreshed by whatever fetches it). The
actual value is used where the API has one, else the forecast (regional data is forecast only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd


class CarbonDataError(ValueError):
    """The file is not carbon-intensity data in the API's shape; says where and why."""


def load_intensity(path: str | Path) -> pd.Series:
    """The intensity series in `path` (see `parse_intensity`)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CarbonDataError(f"{path}: {error}") from error
    return parse_intensity(document)


def parse_intensity(document: Any) -> pd.Series:
    """gCO₂/kWh per interval: index `from` (UTC), values float, attribute `to` kept as the
    Series' `attrs["ends"]` (a DatetimeIndex). Raises CarbonDataError naming the bad entry."""
    entries = _entries(document)
    starts, ends, values = [], [], []
    for index, entry in enumerate(entries):
        start, end, value = _entry(entry, f"data[{index}]")
        starts.append(start)
        ends.append(end)
        values.append(value)
    series = pd.Series(
        values, index=pd.DatetimeIndex(starts, name="from"), dtype="float64", name="intensity"
    )
    order = series.index.argsort()
    series = series.iloc[order]
    series.attrs["ends"] = pd.DatetimeIndex(ends)[order]
    return series


def intensity_at(series: pd.Series, times: pd.DatetimeIndex) -> pd.Series:
    """The intensity of the interval each of `times` falls in (NaN outside every interval)."""
    if series.empty or times.empty:
        return pd.Series(float("nan"), index=times, dtype="float64")
    position = series.index.searchsorted(times, side="right") - 1
    inside = position >= 0
    clipped = position.clip(min=0)
    ends: pd.DatetimeIndex = series.attrs["ends"]
    inside &= times < ends[clipped]
    values = series.to_numpy()[clipped]
    return pd.Series(values, index=times, dtype="float64").where(inside)


def _entries(document: Any) -> Sequence[Any]:
    if not isinstance(document, Mapping) or "data" not in document:
        raise CarbonDataError('expected an object with "data" (the carbon-intensity API shape)')
    data = document["data"]
    if isinstance(data, list) and data and isinstance(data[0], Mapping) and "regionid" in data[0]:
        data = data[0]
    if isinstance(data, Mapping):
        data = data.get("data")
    if not isinstance(data, list):
        raise CarbonDataError('"data" must be a list of half-hours (or a region holding one)')
    return data


def _entry(entry: Any, where: str) -> tuple[datetime, datetime, float]:
    if not isinstance(entry, Mapping):
        raise CarbonDataError(f"{where}: expected an object")
    start, end = _time(entry.get("from"), f"{where}.from"), _time(entry.get("to"), f"{where}.to")
    if end <= start:
        raise CarbonDataError(f"{where}: to must be after from")
    intensity = entry.get("intensity")
    if not isinstance(intensity, Mapping):
        raise CarbonDataError(f"{where}.intensity: expected an object")
    value = intensity.get("actual")
    if value is None:
        value = intensity.get("forecast")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 5000:
        raise CarbonDataError(f"{where}.intensity: no actual or forecast gCO2/kWh (got {value!r})")
    return start, end, float(value)


def _time(text: Any, where: str) -> datetime:
    if not isinstance(text, str):
        raise CarbonDataError(f"{where}: expected an ISO 8601 time")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CarbonDataError(f"{where}: {text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise CarbonDataError(f"{where}: {text!r} has no UTC offset")
    return when
