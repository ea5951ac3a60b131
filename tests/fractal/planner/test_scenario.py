"""Scenario validation: bad input gets every problem named by home and field, never a crash."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fractal.planner import ScenarioError, load_scenario, parse_scenario
from fractal.planner.scenario import scenario_json_schema
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.planner_scenarios import battery, home, scenario


def valid() -> dict[str, Any]:
    return scenario(
        home("north", load=[1.0] * 4, imp=[10.0] * 4, exp=[5.0] * 4, battery=battery()),
        home("south", load=[0.5] * 4, imp=[12.0] * 4, exp=[4.0] * 4),
        step_seconds=900,
    )


def problems_of(document: object) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(document)
    return caught.value.problems


def test_a_valid_scenario_parses_with_its_time_grid() -> None:
    parsed = parse_scenario(valid())
    assert parsed.slots == 4
    assert parsed.step_hours == 0.25
    assert parsed.slot_start(2).isoformat() == "2026-11-22T00:30:00+00:00"
    assert parsed.homes[0].battery is not None
    assert parsed.homes[0].battery.soc_max == 10.0


def test_problems_name_the_home_and_the_field() -> None:
    document = valid()
    document["homes"][1]["grid"]["export_max_kw"] = -1
    document["homes"][0]["battery"]["soc_kwh"] = 11.0
    problems = problems_of(document)
    assert "home 'south' (homes[1]) grid.export_max_kw: Input should be greater than or" in (
        " ".join(problems)
    )
    assert any(
        p.startswith("home 'north' (homes[0]) battery:") and "exceeds" in p for p in problems
    )


def test_arrays_need_one_value_per_slot() -> None:
    document = valid()
    document["homes"][1]["load_kw"] = [1.0] * 3
    document["homes"][1]["export_p_per_kwh"] = [1.0] * 5
    problems = problems_of(document)
    assert "home 'south': load_kw has 3 values, expected 4 (one per slot, as 'north' pv_kw)" in (
        problems
    )
    assert any("export_p_per_kwh has 5 values" in p for p in problems)


def test_horizon_is_at_most_48_hours() -> None:
    document = scenario(home(load=[0.0] * 97, imp=[1.0] * 97, exp=[0.0] * 97), step_seconds=1800)
    assert any("exceeds 48 h (at most 96 slots)" in p for p in problems_of(document))
    document = scenario(home(load=[0.0] * 96, imp=[1.0] * 96, exp=[0.0] * 96), step_seconds=1800)
    assert parse_scenario(document).slots == 96


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(step_seconds=1000), "step_seconds must be one of"),
        (lambda d: d.update(homes=[]), "homes: List should have at least 1 item"),
        (lambda d: d["homes"][1].update(id="north"), "home 'north': duplicate id"),
        (lambda d: d["homes"][0]["pv_kw"].__setitem__(0, float("nan")), "pv_kw.0"),
        (lambda d: d["homes"][0].update(colour="red"), "colour: Extra inputs are not permitted"),
        (lambda d: d.update(start="2026-11-22T00:00:00"), "start: Input should have timezone"),
        (lambda d: d["homes"][0]["battery"].update(charge_efficiency=0), "charge_efficiency"),
        (lambda d: d["homes"][0]["battery"].update(soc_min_kwh=9, soc_max_kwh=8), "exceeds"),
    ],
)
def test_each_kind_of_bad_value_is_reported(mutate: Any, expected: str) -> None:
    document = valid()
    mutate(document)
    assert any(expected in problem for problem in problems_of(document)), problems_of(document)


def test_ev_departure_must_follow_arrival() -> None:
    document = valid()
    document["homes"][0]["ev"] = {
        "arrival": "2026-11-22T05:00:00Z",
        "departure": "2026-11-22T04:00:00Z",
        "energy_kwh": 10,
        "max_kw": 7.4,
    }
    assert "home 'north' (homes[0]) ev: departure must be after arrival" in problems_of(document)


def test_files_that_are_not_json_get_a_clear_error() -> None:
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load_scenario(b"{homes: nope")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load_scenario(b"\xff\xfe")
    assert load_scenario(json.dumps(valid())).slots == 4


def test_the_published_schema_matches_the_model() -> None:
    from pathlib import Path

    published = Path(__file__).parents[3] / "docs" / "schemas" / "scenario.schema.json"
    assert json.loads(published.read_text()) == scenario_json_schema()


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(garbage=json_values)
def test_arbitrary_json_is_rejected_with_problems_not_a_crash(garbage: object) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(garbage)
    assert caught.value.problems
    assert all(isinstance(p, str) and p for p in caught.value.problems)


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@settings(max_examples=200, deadline=None)
@given(data=st.data(), garbage=json_values)
def test_a_garbage_field_is_reported_or_accepted_never_a_crash(
    data: st.DataObject, garbage: object
) -> None:
    document = copy.deepcopy(valid())
    path = data.draw(st.sampled_from(_paths(document)))
    parent: Any = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = garbage
    problems: list[str] = []
    try:
        parse_scenario(document)
    except ScenarioError as error:
        problems = error.problems or ["<ScenarioError without problems>"]
    if problems and path[0] == "homes" and len(path) > 2 and path[2] != "id":
        home_id = document["homes"][path[1]]["id"]
        assert any(repr(home_id) in p or "home #" in p for p in problems), problems
