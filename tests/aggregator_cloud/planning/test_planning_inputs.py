"""PlanningInputs: series on their own grids, per-node overrides, merging, clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator_cloud.planning.inputs import (
    InputsError,
    Series,
    inputs_json_schema,
    load_inputs,
    merge_inputs,
    parse_inputs,
)

T0 = datetime(2026, 11, 22, tzinfo=UTC)


def series(values: list[float], step: int = 1800, start: datetime = T0) -> dict[str, Any]:
    return {"start": start.isoformat(), "step_seconds": step, "values": values}


def test_a_series_holds_each_value_for_its_step_and_averages_coarser_slots() -> None:
    hourly = Series.model_validate(series([1.0, 3.0], step=3600))
    half_hourly = Series.model_validate(series([2.0, 4.0, 6.0, 8.0]))
    assert hourly.at(T0 + timedelta(minutes=59)) == 1.0
    assert hourly.at(T0 + timedelta(hours=2)) is None
    assert hourly.at(T0 - timedelta(seconds=1)) is None
    assert hourly.mean(T0 + timedelta(minutes=30), 1800) == 1.0
    assert half_hourly.mean(T0, 3600) == 3.0
    assert half_hourly.mean(T0 + timedelta(hours=1), 3600) == 7.0
    assert half_hourly.mean(T0 + timedelta(hours=1, minutes=30), 3600) is None  # runs out


def test_a_node_s_own_series_override_the_fleet_s() -> None:
    inputs = parse_inputs(
        {
            "import_p_per_kwh": series([20.0]),
            "load_kw": series([0.4]),
            "nodes": {"home-1": {"load_kw": series([1.2])}},
        }
    )
    own = inputs.for_node("home-1")
    other = inputs.for_node("home-2")
    assert own.load_kw is not None
    assert own.load_kw.values == [1.2]
    assert own.import_p_per_kwh == other.import_p_per_kwh
    assert other.load_kw is not None
    assert other.load_kw.values == [0.4]


def test_later_documents_override_what_they_set_and_keep_the_rest() -> None:
    tariff = parse_inputs({"import_p_per_kwh": series([20.0]), "export_p_per_kwh": series([15.0])})
    forecast = parse_inputs(
        {
            "load_kw": series([0.5]),
            "import_p_per_kwh": series([9.0]),
            "nodes": {"home-1": {"pv_kw": series([2.0])}},
        }
    )
    late = parse_inputs({"nodes": {"home-1": {"load_kw": series([0.7])}}})

    merged = merge_inputs([tariff, forecast, late])

    home = merged.for_node("home-1")
    assert home.import_p_per_kwh is not None
    assert home.import_p_per_kwh.values == [9.0]
    assert home.export_p_per_kwh is not None
    assert home.export_p_per_kwh.values == [15.0]
    assert home.pv_kw is not None
    assert home.pv_kw.values == [2.0]
    assert home.load_kw is not None
    assert home.load_kw.values == [0.7]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "not valid JSON"),
        (
            '{"import_p_per_kwh": {"start": "2026-11-22T00:00:00", "step_seconds": 1800, '
            '"values": [1]}}',
            "import_p_per_kwh.start: Input should have timezone info",
        ),
        (
            json.dumps({"load_kw": series([1.0], step=1234)}),
            "load_kw.step_seconds: step_seconds must be one of",
        ),
        (json.dumps({"load_kw": series([])}), "load_kw.values: List should have at least 1 item"),
        (json.dumps({"tariff": 3}), "tariff: Extra inputs are not permitted"),
        (
            json.dumps({"nodes": {"bad id!": {}}}),
            "nodes.bad id!.[key]: String should match pattern",
        ),
        (json.dumps({"schema": "fractal.planning_inputs.v9"}), "schema: Input should be"),
        (
            json.dumps(
                {
                    "nodes": {
                        "h1": {
                            "ev": {
                                "arrival": "2026-11-22T08:00:00Z",
                                "departure": "2026-11-22T07:00:00Z",
                                "energy_kwh": 5,
                            }
                        }
                    }
                }
            ),
            "nodes.h1.ev: departure must be after arrival",
        ),
        (
            json.dumps({"horizon_hours": 49}),
            "horizon_hours: Input should be less than or equal to 48",
        ),
    ],
)
def test_bad_documents_are_refused_naming_the_field(text: str, problem: str) -> None:
    with pytest.raises(InputsError) as raised:
        load_inputs(text)
    assert any(found.startswith(problem) for found in raised.value.problems), raised.value.problems


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    )
)
def test_garbage_is_an_inputs_error_never_a_crash(garbage: object) -> None:
    problems: list[str] | None = None
    try:
        parse_inputs(garbage)
    except InputsError as error:
        problems = error.problems
    # Whatever else it raises fails the test; a refusal always says why.
    assert problems is None or all(problems)


def test_the_json_schema_names_the_document() -> None:
    schema = inputs_json_schema()
    assert schema["properties"]["schema"]["const"] == "fractal.planning_inputs.v1"
    assert "Series" in schema["$defs"]


def test_the_published_schema_matches_the_model() -> None:
    published = Path(__file__).parents[3] / "docs" / "schemas" / "planning_inputs.schema.json"
    assert json.loads(published.read_text()) == inputs_json_schema()
