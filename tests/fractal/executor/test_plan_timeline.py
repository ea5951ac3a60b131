"""The plans in force as a timeline (the plan calendar and plan sensors): per device, the
command the executor's own priorities choose, merged into runs."""

from __future__ import annotations

from datetime import timedelta

from fractal.executor import Sources, override_plan
from fractal.executor.timeline import expected_soc, plan_in_force, timeline
from fractal.protocol import Command, Mode, Plan

from tests.fractal.executor.executor_fixtures import START, descriptor, envelope, plan

HALF_HOUR = timedelta(minutes=30)


def aggregator_plan() -> Plan:
    return plan(
        {
            "battery": {
                "kind": "battery",
                "windows": [
                    {"start": 0, "end": 2, "mode": "charge", "value": 2500},
                    {"start": 2, "end": 4, "mode": "discharge", "value": 2000},
                ],
            }
        },
        expected={"soc_pct": [40, 50, 45, 40]},
    )


def test_an_override_cuts_into_the_aggregator_plan_and_the_plan_resumes() -> None:
    aggregator = aggregator_plan()
    override, problems = override_plan(
        envelope(), "battery", "hold", None, now=START + HALF_HOUR, until=START + 2 * HALF_HOUR
    )
    assert problems == []
    sources = Sources(override=override, aggregator=aggregator)
    devices = descriptor().devices
    found = [
        (s.start - START, s.end - START, s.command, s.source)
        for s in timeline(sources, devices, START, START + 4 * HALF_HOUR)
        if s.device == "battery"
    ]
    assert found == [
        (timedelta(0), HALF_HOUR, Command(Mode.CHARGE, 2500), "aggregator"),
        (HALF_HOUR, 2 * HALF_HOUR, Command(Mode.HOLD), "override"),
        (2 * HALF_HOUR, 4 * HALF_HOUR, Command(Mode.DISCHARGE, 2000), "aggregator"),
    ]


def test_runs_are_whole_even_where_the_range_cuts_them() -> None:
    sources = Sources(aggregator=aggregator_plan())
    inside = START + timedelta(minutes=45)
    found = timeline(sources, descriptor().devices, inside, inside + timedelta(minutes=1))
    battery = [s for s in found if s.device == "battery"]
    assert [(s.start, s.end) for s in battery] == [(START, START + 2 * HALF_HOUR)]
    # Devices no plan covers (the EV charger here) run the safe default: no events for them.
    assert {s.device for s in found} == {"battery"}
    assert timeline(Sources(), descriptor().devices, START, START + HALF_HOUR) == []


def test_the_plan_in_force_and_its_expected_soc() -> None:
    aggregator = aggregator_plan()
    sources = Sources(aggregator=aggregator)
    assert plan_in_force(sources, START + timedelta(minutes=10)) is aggregator
    assert plan_in_force(sources, START + 4 * HALF_HOUR) is None  # after its end
    # End-of-slot values: 40 % at the end of slot 0; halfway through slot 1 -> 45 %.
    assert expected_soc(sources, START + timedelta(minutes=10)) == 40.0
    assert expected_soc(sources, START + HALF_HOUR + timedelta(minutes=15)) == 45.0
    assert expected_soc(sources, START + 4 * HALF_HOUR) is None
    assert expected_soc(Sources(), START) is None
