"""Fleet events: a tag group's net import held under a cap or over a floor, by price."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fractal.planner import Planner, parse_scenario
from fractal.planner.fleet import event_slots, plan_fleet
from fractal.planner.scenario import ScenarioError
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.planner_check import reference_cost, replay
from tests.support.planner_scenarios import START, battery, home, scenario

EVENING = {"start": "2026-11-22T04:00:00Z", "end": "2026-11-22T06:00:00Z"}


def street(cap_kw: float, **event: Any) -> dict[str, Any]:
    # Six hours; every elm home loads 1.5 kW in the last two. The evening costs only 1 p more
    # than the night, less than a battery cycle's losses and wear: alone, no home cycles.
    prices = [20.0] * 4 + [21.0] * 2
    homes = [
        home(
            f"elm-{i}",
            load=[0.3] * 4 + [1.5, 1.5],
            imp=prices,
            exp=[0.0] * 6,
            battery=battery(capacity_kwh=4.0, soc_max_kwh=4.0, charge_kw=1.0, discharge_kw=1.5),
            tags={"street": "elm"},
        )
        for i in range(3)
    ]
    homes.append(home("oak-1", load=[1.0] * 6, imp=prices, exp=[0.0] * 6, tags={"street": "oak"}))
    flex = {"id": "cap", "tag": "street", "value": "elm", "import_max_kw": cap_kw} | EVENING
    return scenario(*homes, events=[flex | event])


def group_import(plans: list[Any], indices: range, window: np.ndarray) -> np.ndarray:
    return np.sum([plans[i].grid_kw for i in indices], axis=0)[window > 0]


def test_a_reachable_cap_is_met_and_the_plans_stay_feasible() -> None:
    parsed = parse_scenario(street(cap_kw=0.5))
    uncoordinated = Planner().plan_scenario(parsed)
    window = event_slots(parsed, parsed.events[0])
    assert group_import(uncoordinated, range(3), window).tolist() == pytest.approx([4.5, 4.5])
    plans, (outcome,) = plan_fleet(parsed)
    assert outcome.met
    assert outcome.status.startswith("met after")
    assert group_import(plans, range(3), window).max() <= 0.5 + 1e-3
    assert all(plan.discharge_kw[4:].sum() > 0 for plan in plans[:3])
    for plan, scenario_home in zip(plans, parsed.homes, strict=True):
        assert replay(parsed, scenario_home, plan).violations == []
    # Meeting the cap cannot beat each home's own optimum; the home outside the tag is as before.
    assert sum(p.cost_p for p in plans) >= sum(p.cost_p for p in uncoordinated) - 1e-6
    assert plans[3].cost_p == pytest.approx(uncoordinated[3].cost_p)
    assert max(outcome.signal_p_per_kwh, default=0.0) > 0


def test_an_impossible_cap_is_reported_not_met() -> None:
    # Batteries giving 0.2 kW cannot carry 4.5 kW of evening load down to zero import.
    document = street(cap_kw=0.0)
    for index in range(3):
        document["homes"][index]["battery"]["discharge_kw"] = 0.2
    plans, (outcome,) = plan_fleet(parse_scenario(document))
    assert not outcome.met
    assert outcome.max_excess_kw == pytest.approx(3 * (1.5 - 0.2), abs=1e-3)
    assert outcome.status == f"not met: the group stays {outcome.max_excess_kw:.3f} kW over its cap"
    assert len(plans) == 4


def test_an_event_for_a_tag_nobody_carries_is_not_applied() -> None:
    plans, (outcome,) = plan_fleet(parse_scenario(street(cap_kw=0.5, value="birch")))
    assert outcome.homes == 0
    assert outcome.status == "not applied: no home carries the tag"
    assert len(plans) == 4


def test_event_slots_cover_every_slot_the_window_touches() -> None:
    parsed = parse_scenario(
        street(cap_kw=1.0, start="2026-11-22T01:30:00Z", end="2026-11-22T03:00:00Z")
    )
    assert START == "2026-11-22T00:00:00Z"
    assert event_slots(parsed, parsed.events[0]).tolist() == [0, 1, 1, 0, 0, 0]


def test_a_cap_needing_part_of_one_home_is_met_by_the_capped_sweep() -> None:
    # Night 5 p, evening 30 p: each battery serves its own evening; elm-0's 0.5 kW battery
    # leaves 1 kW to import, elm-2's 2.5 kW one has about 0.6 kWh to spare. A 0.75 kW cap needs
    # 0.25 kW exported by elm-2 in each evening hour: a price moves all of elm-2's spare energy
    # into one hour or the other, the capped sweep splits it.
    document = street(cap_kw=0.75)
    for index, document_home in enumerate(document["homes"][:3]):
        document_home["import_p_per_kwh"] = [5.0] * 4 + [30.0] * 2
        document_home["battery"]["discharge_kw"] = 0.5 + index
        # A time-of-use export tariff: a neighbour's battery may export to cover the street.
        document_home["grid"]["export_stored_grid_energy"] = True
    parsed = parse_scenario(document)
    window = event_slots(parsed, parsed.events[0])
    alone = Planner().plan_scenario(parsed)
    assert group_import(alone, range(3), window).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    plans, (outcome,) = plan_fleet(parsed)
    assert outcome.met
    assert outcome.swept
    assert outcome.status.endswith("and a capped sweep")
    assert group_import(plans, range(3), window).max() <= 0.75 + 1e-3
    for plan, scenario_home in zip(plans, parsed.homes, strict=True):
        assert replay(parsed, scenario_home, plan).violations == []


@settings(max_examples=15, deadline=None)
@given(
    cap_kw=st.floats(0.0, 5.0, allow_subnormal=False),
    discharge=st.lists(st.floats(0.0, 3.0, allow_subnormal=False), min_size=3, max_size=3),
    evening_price=st.floats(0.0, 60.0, allow_subnormal=False),
    exports=st.booleans(),
)
def test_coordination_never_breaks_a_home_and_never_claims_a_cap_it_misses(
    cap_kw: float, discharge: list[float], evening_price: float, exports: bool
) -> None:
    document = street(cap_kw=cap_kw)
    for index, document_home in enumerate(document["homes"][:3]):
        document_home["import_p_per_kwh"] = [20.0] * 4 + [evening_price] * 2
        document_home["battery"]["discharge_kw"] = discharge[index]
        document_home["grid"]["export_stored_grid_energy"] = exports
    parsed = parse_scenario(document)
    alone = Planner().plan_scenario(parsed)
    plans, (outcome,) = plan_fleet(parsed)
    window = event_slots(parsed, parsed.events[0])
    worst = float(group_import(plans, range(3), window).max()) - cap_kw
    assert outcome.met == (worst <= 1e-3)
    assert outcome.max_excess_kw == pytest.approx(max(worst, 0.0), abs=1e-6)
    for plan, scenario_home in zip(plans, parsed.homes, strict=True):
        assert replay(parsed, scenario_home, plan).violations == []
        assert plan.status.kind == "optimal"
    assert sum(p.cost_p for p in plans) >= sum(p.cost_p for p in alone) - 1e-6


def street_floor(floor_kw: float) -> dict[str, Any]:
    """The elm street with a turn-up: the group's evening import held at or over a floor.

    No cycle cost, so the cheapest way to import more is plain to see: each elm battery (empty,
    1 kW charge) can add at most 1 kW to its home's 1.5 kW evening load.
    """
    document = street(cap_kw=0.0)
    event = document["events"][0]
    del event["import_max_kw"]
    event |= {"id": "up", "import_min_kw": floor_kw}
    for document_home in document["homes"][:3]:
        document_home["battery"]["cycle_cost_p_per_kwh"] = 0.0
    return document


def test_a_reachable_floor_is_met_by_price_at_the_cost_of_the_imported_energy() -> None:
    parsed = parse_scenario(street_floor(floor_kw=7.5))
    window = event_slots(parsed, parsed.events[0])
    alone = Planner().plan_scenario(parsed)
    assert group_import(alone, range(3), window).tolist() == pytest.approx([4.5, 4.5])
    plans, (outcome,) = plan_fleet(parsed)
    assert outcome.met
    assert outcome.floor
    assert outcome.status.startswith("met after")
    assert not outcome.swept
    assert group_import(plans, range(3), window).min() >= 7.5 - 1e-3
    assert min(outcome.signal_p_per_kwh) < 0  # import made cheaper, never dearer
    assert max(outcome.signal_p_per_kwh) <= 0
    for plan, scenario_home in zip(plans, parsed.homes, strict=True):
        assert replay(parsed, scenario_home, plan).violations == []
    # A 7.5 kW floor needs every elm battery charging at 1 kW through the evening: the least
    # cost is each home's optimum with a 2.5 kW evening load and no battery (the independent
    # reference), and that is what the coordinated plans cost; oak-1 is untouched.
    for index in range(3):
        forced = parsed.homes[index].model_copy(
            update={"load_kw": [0.3] * 4 + [2.5, 2.5], "battery": None}
        )
        assert plans[index].cost_p == pytest.approx(reference_cost(parsed, forced), abs=1e-3)
    assert plans[3].cost_p == pytest.approx(alone[3].cost_p)


def test_a_partial_floor_is_met_by_price_alone() -> None:
    # 6 kW needs 1.5 kW more; price moves whole batteries, so it may buy more than that (the
    # sweep serves caps only), never less, and never more than every battery charging.
    parsed = parse_scenario(street_floor(floor_kw=6.0))
    window = event_slots(parsed, parsed.events[0])
    alone = Planner().plan_scenario(parsed)
    plans, (outcome,) = plan_fleet(parsed)
    assert outcome.met
    assert group_import(plans, range(3), window).min() >= 6.0 - 1e-3
    assert group_import(plans, range(3), window).max() <= 7.5 + 1e-3
    extra = sum(p.cost_p for p in plans) - sum(p.cost_p for p in alone)
    assert 1.5 * 2 * 21.0 - 1e-3 <= extra <= 3.0 * 2 * 21.0 + 1e-3
    for plan, scenario_home in zip(plans, parsed.homes, strict=True):
        assert replay(parsed, scenario_home, plan).violations == []


def test_an_impossible_floor_is_reported_not_met() -> None:
    # At most 4.5 + 3 x 1 kW: a 9 kW floor stays 1.5 kW short, and says so.
    parsed = parse_scenario(street_floor(floor_kw=9.0))
    plans, (outcome,) = plan_fleet(parsed)
    assert not outcome.met
    assert outcome.max_excess_kw == pytest.approx(1.5, abs=1e-3)
    assert outcome.status == "not met: the group stays 1.500 kW under its floor"
    window = event_slots(parsed, parsed.events[0])
    assert group_import(plans, range(3), window).tolist() == pytest.approx([7.5, 7.5], abs=1e-3)
    for plan, scenario_home in zip(plans, parsed.homes, strict=True):
        assert replay(parsed, scenario_home, plan).violations == []


@pytest.mark.parametrize("limits", [{}, {"import_max_kw": 1.0, "import_min_kw": 2.0}])
def test_an_event_sets_exactly_one_of_cap_and_floor(limits: dict[str, float]) -> None:
    document = street(cap_kw=1.0)
    event = document["events"][0]
    del event["import_max_kw"]
    event |= limits
    with pytest.raises(ScenarioError, match="set exactly one of import_max_kw"):
        parse_scenario(document)
