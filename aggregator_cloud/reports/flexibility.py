"""Flexibility delivery report: what a set of assets delivered during a DSO event, per interval,
against a mid-8-of-10 baseline with an in-day adjustment (docs/reports.md says exactly how).

The measured quantity, export-positive, is per node either the battery's output (`battery`:
-battery_w, discharge positive) or the site's net export at the meter (`site`: -grid_w).
Assets' interval means are summed; `discharge_only` counts only output (a sample's negative
value counts as 0). Everything is computed in UTC; local time is Europe/London wall clock, which
is how a baseline day's window is placed (it starts at the event's local start time; its
intervals then follow in elapsed time, like the event's)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
from fractal.protocol import FlexibilityEvent
from fractal.protocol.types import FlexDirection

from aggregator_cloud.store import SqliteStore

LONDON: Final = ZoneInfo("Europe/London")
Quantity = Literal["battery", "site"]
QUANTITIES: Final[dict[str, str]] = {"battery": "battery_w", "site": "grid_w"}
BASELINE_DAYS: Final = 10
"""Days averaged (after the highest and lowest are dropped): mid-8-of-10."""
LOOKBACK_DAYS: Final = 60
"""How far back eligible baseline days are looked for."""
ADJUSTMENT_WINDOW: Final = timedelta(hours=2)
ADJUSTMENT_GAP: Final = timedelta(hours=1)
"""The in-day adjustment window: the 2 hours ending 1 hour before the event starts."""
ADJUSTMENT_CAP: Final = 0.2
"""The adjustment is capped at ±20 % of the mean baseline over the window."""
CSV_COLUMNS: Final = (
    "utc_time",
    "local_time",
    "kw",
    "kwh",
    "baseline_kw",
    "adjusted_baseline_kw",
    "response_kw",
    "response_kwh",
)


class NoBaseline(ValueError):
    """No eligible day before the event has data: the response cannot be measured."""


@dataclass(frozen=True)
class ReportRequest:
    event: FlexibilityEvent
    nodes: tuple[str, ...]
    resolution: timedelta = timedelta(minutes=10)
    discharge_only: bool = False
    quantity: Quantity = "battery"
    other_events: tuple[FlexibilityEvent, ...] = ()
    """Every stored event: days any of them touched are not baseline days."""


@dataclass(frozen=True)
class DeliveryReport:
    request: ReportRequest
    table: pd.DataFrame
    """Index: interval start (UTC); columns CSV_COLUMNS but utc_time (kW, kWh; NaN: no data)."""
    baseline_days: tuple[date, ...]
    adjustment_kw: float
    adjustment_uncapped_kw: float
    notes: tuple[str, ...] = field(default=())

    @property
    def delivered_kwh(self) -> float:
        return float(self.table["response_kwh"].sum())

    def csv(self) -> str:
        return report_csv(self.table)


def build_report(store: SqliteStore, request: ReportRequest) -> DeliveryReport:
    """The delivery report; NoBaseline when no eligible day has data, ValueError on bad input."""
    event, step = request.event, request.resolution
    _check_request(request)
    event_day = event.start.astimezone(LONDON).date()
    first_day = event_day - timedelta(days=LOOKBACK_DAYS)
    since = datetime.combine(first_day, time(), LONDON)
    power = asset_power(store, request, since, event.end)
    offsets = _offsets(event.start, event.end, step)
    window_start = event.start - ADJUSTMENT_GAP - ADJUSTMENT_WINDOW
    window_offsets = _offsets(window_start, event.start - ADJUSTMENT_GAP, step)
    days = eligible_days(power, event, request.other_events, offsets, step)
    if not days:
        raise NoBaseline(
            f"no eligible baseline day for event {event.id!r}: none of the {LOOKBACK_DAYS} days "
            f"before {event_day} of the same day type (weekday or weekend), without an event, "
            "has data in every interval of the event window"
        )
    notes = []
    if len(days) < BASELINE_DAYS:
        notes.append(
            f"only {len(days)} eligible baseline days (of {BASELINE_DAYS}): the baseline is "
            "the mean of those left after dropping the highest and lowest (when 3 or more)"
        )
    baseline = _baseline(power, days, event.start, offsets, step)
    window_baseline = _baseline(power, days, window_start, window_offsets, step)
    window_actual = power.reindex([window_start + offset for offset in window_offsets])
    uncapped, capped = in_day_adjustment(window_actual.to_numpy(), window_baseline.to_numpy())
    table = _table(
        power=power, baseline=baseline, adjustment=capped, event=event, offsets=offsets, step=step
    )
    return DeliveryReport(request, table, tuple(days), capped, uncapped, tuple(notes))


def _check_request(request: ReportRequest) -> None:
    if not request.nodes:
        raise ValueError("pick at least one asset (node)")
    if request.quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {', '.join(QUANTITIES)}")
    step = request.resolution
    if step <= timedelta(0) or timedelta(days=1) % step or step > timedelta(hours=1):
        raise ValueError("resolution must divide a day and be at most an hour")


def asset_power(
    store: SqliteStore, request: ReportRequest, start: datetime, end: datetime
) -> pd.Series:
    """The assets' summed mean power (kW, export-positive) per interval of `request.resolution`
    in [start, end), intervals counted from the event's start; those no asset reported in are
    absent."""
    column = QUANTITIES[request.quantity]
    step = pd.Timedelta(request.resolution)
    origin = pd.Timestamp(request.event.start)
    per_node = []
    for node in request.nodes:
        values = -store.samples(node, start, end)[column].dropna()
        if request.discharge_only:
            values = values.clip(lower=0.0)
        if not values.empty:
            buckets = origin + ((pd.DatetimeIndex(values.index) - origin) // step) * step
            per_node.append(values.groupby(buckets).mean() / 1000.0)
    if not per_node:
        return pd.Series(dtype="float64", index=pd.DatetimeIndex([], tz="UTC"))
    return pd.concat(per_node, axis=1, sort=True).sum(axis=1, min_count=1).sort_index()


def _offsets(start: datetime, end: datetime, step: timedelta) -> list[timedelta]:
    count = -(-(end - start) // step)
    return [step * index for index in range(count)]


def eligible_days(
    power: pd.Series,
    event: FlexibilityEvent,
    events: Sequence[FlexibilityEvent],
    offsets: Sequence[timedelta],
    step: timedelta,
) -> list[date]:
    """The most recent BASELINE_DAYS local days before the event day with its day type
    (weekday or weekend), no event (of any stored event) and data in every event interval."""
    event_day = event.start.astimezone(LONDON).date()
    busy = {event_day} | {day for other in events for day in _local_days(other)}
    found: list[date] = []
    for back in range(1, LOOKBACK_DAYS + 1):
        day = event_day - timedelta(days=back)
        if _weekend(day) != _weekend(event_day) or day in busy:
            continue
        start = _same_local_time(event.start, day)
        intervals = [start + offset for offset in offsets]
        if power.reindex(intervals).notna().all():
            found.append(day)
        if len(found) == BASELINE_DAYS:
            break
    return found


def _local_days(event: FlexibilityEvent) -> set[date]:
    first = event.start.astimezone(LONDON).date()
    last = (event.end - timedelta(microseconds=1)).astimezone(LONDON).date()
    return {first + timedelta(days=index) for index in range((last - first).days + 1)}


def _weekend(day: date) -> bool:
    return day.weekday() >= 5


def _same_local_time(when: datetime, day: date) -> pd.Timestamp:
    """`when`'s Europe/London wall-clock time on `day`, in UTC (a time the clocks skip on a
    DST day moves forward; one they repeat is the first)."""
    local = pd.Timestamp(datetime.combine(day, when.astimezone(LONDON).time()))
    placed = local.tz_localize(LONDON, ambiguous=True, nonexistent="shift_forward")
    return placed.tz_convert("UTC")


def _baseline(
    power: pd.Series,
    days: Sequence[date],
    start: datetime,
    offsets: Sequence[timedelta],
    step: timedelta,
) -> pd.Series:
    """Per interval: the mid-8-of-10 mean of the days' values at the same local time."""
    rows = [
        power.reindex([_same_local_time(start, day) + offset for offset in offsets]).to_numpy()
        for day in days
    ]
    values = [mid_mean(column) for column in np.array(rows, dtype="float64").T]
    return pd.Series(values, index=[pd.Timestamp(start) + offset for offset in offsets])


def mid_mean(values: npt.NDArray[np.float64]) -> float:
    """Drop the highest and the lowest (once each, when 3 or more values), average the rest;
    NaN values (no data) are left out first."""
    known = np.sort(values[~np.isnan(values)])
    if known.size == 0:
        return float("nan")
    if known.size >= 3:
        known = known[1:-1]
    return float(known.mean())


def in_day_adjustment(
    actual: npt.NDArray[np.float64], baseline: npt.NDArray[np.float64]
) -> tuple[float, float]:
    """(uncapped, capped) additive adjustment: the mean of actual - baseline over the window's
    intervals that have both, capped at ADJUSTMENT_CAP of the window's mean |baseline|."""
    both = ~np.isnan(actual) & ~np.isnan(baseline)
    if not both.any():
        return 0.0, 0.0
    uncapped = float((actual[both] - baseline[both]).mean())
    cap = ADJUSTMENT_CAP * abs(float(baseline[both].mean()))
    return uncapped, float(np.clip(uncapped, -cap, cap))


def _table(
    *,
    power: pd.Series,
    baseline: pd.Series,
    adjustment: float,
    event: FlexibilityEvent,
    offsets: Sequence[timedelta],
    step: timedelta,
) -> pd.DataFrame:
    index = pd.DatetimeIndex([pd.Timestamp(event.start) + offset for offset in offsets])
    hours = step / timedelta(hours=1)
    kw = power.reindex(index)
    sign = 1.0 if event.direction == FlexDirection.DOWN else -1.0
    adjusted = baseline.to_numpy() + adjustment
    response = sign * (kw.to_numpy() - adjusted)
    return pd.DataFrame(
        {
            "local_time": index.tz_convert(LONDON),
            "kw": kw.to_numpy(),
            "kwh": kw.to_numpy() * hours,
            "baseline_kw": baseline.to_numpy(),
            "adjusted_baseline_kw": adjusted,
            "response_kw": response,
            "response_kwh": response * hours,
        },
        index=index.rename("utc_time"),
    )


def report_csv(table: pd.DataFrame) -> str:
    """CSV_COLUMNS; times ISO 8601 (UTC with Z, local with its offset), numbers to 3 decimals,
    an interval without data left empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for utc, row in table.iterrows():
        assert isinstance(utc, pd.Timestamp)
        writer.writerow(
            [
                utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                row["local_time"].isoformat(),
                *(_number(row[name]) for name in CSV_COLUMNS[2:]),
            ]
        )
    return out.getvalue()


def _number(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.3f}"
