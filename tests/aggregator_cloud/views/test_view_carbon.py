"""The grid's carbon intensity from the National Grid API's JSON (national and regional)."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aggregator_cloud.views import CarbonDataError, intensity_at, load_intensity, parse_intensity

NATIONAL = {
    "data": [
        {
            "from": "2026-03-01T10:30Z",
            "to": "2026-03-01T11:00Z",
            "intensity": {"forecast": 190, "actual": None, "index": "moderate"},
        },
        {
            "from": "2026-03-01T10:00Z",
            "to": "2026-03-01T10:30Z",
            "intensity": {"forecast": 180, "actual": 176, "index": "moderate"},
        },
    ]
}
REGIONAL = {
    "data": [
        {
            "regionid": 13,
            "shortname": "London",
            "data": [
                {
                    "from": "2026-03-01T10:00Z",
                    "to": "2026-03-01T10:30Z",
                    "intensity": {"forecast": 120, "index": "low"},
                    "generationmix": [{"fuel": "wind", "perc": 40.1}],
                }
            ],
        }
    ]
}


def at(series: pd.Series, *texts: str) -> list[float]:
    times = pd.DatetimeIndex([datetime.fromisoformat(text) for text in texts])
    return list(intensity_at(series, times))


def test_actual_where_known_else_forecast_in_time_order() -> None:
    series = parse_intensity(NATIONAL)

    assert list(series) == [176.0, 190.0]
    assert at(series, "2026-03-01T10:29:59Z", "2026-03-01T10:30:00Z") == [176.0, 190.0]


def test_outside_every_interval_is_unknown() -> None:
    series = parse_intensity(NATIONAL)

    before, after = at(series, "2026-03-01T09:59:59Z", "2026-03-01T11:00:00Z")
    assert math.isnan(before)
    assert math.isnan(after)


def test_regional_response_is_read(tmp_path: Path) -> None:
    path = tmp_path / "london.json"
    path.write_text(json.dumps(REGIONAL))

    series = load_intensity(path)

    assert list(series) == [120.0]
    assert series.index[0] == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "expected an object"),
        ({"data": 3}, '"data" must be a list'),
        ({"data": [{"from": "2026-03-01T10:00", "to": "2026-03-01T10:30Z"}]}, "no UTC offset"),
        ({"data": [{"from": "x", "to": "2026-03-01T10:30Z"}]}, "is not an ISO 8601"),
        (
            {"data": [{"from": "2026-03-01T10:30Z", "to": "2026-03-01T10:00Z", "intensity": {}}]},
            "to must be after from",
        ),
        (
            {"data": [{"from": "2026-03-01T10:00Z", "to": "2026-03-01T10:30Z", "intensity": {}}]},
            "data[0].intensity: no actual or forecast",
        ),
        (
            {
                "data": [
                    {
                        "from": "2026-03-01T10:00Z",
                        "to": "2026-03-01T10:30Z",
                        "intensity": {"forecast": "high"},
                    }
                ]
            },
            "no actual or forecast",
        ),
    ],
)
def test_bad_data_is_refused_saying_where(document: Any, message: str) -> None:
    with pytest.raises(CarbonDataError, match=re.escape(message)):
        parse_intensity(document)


def test_unreadable_file_is_a_carbon_data_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")

    with pytest.raises(CarbonDataError, match=re.escape("broken.json")):
        load_intensity(path)
