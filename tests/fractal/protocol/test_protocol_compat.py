"""A plan is checked against the node it is for: devices, kinds and accepted modes."""

from __future__ import annotations

from typing import Any

from fractal.protocol import (
    NodeDescriptor,
    Plan,
    Problem,
    compatibility_problems,
    parse,
)

from tests.fractal.protocol.protocol_examples import example

Raw = dict[str, Any]


def _check(plan_raw: Raw, descriptor_raw: Raw) -> list[Problem]:
    plan = parse(Plan, plan_raw).document
    descriptor = parse(NodeDescriptor, descriptor_raw).document
    assert plan is not None
    assert descriptor is not None
    return compatibility_problems(plan, descriptor)


def test_the_documented_plan_suits_the_documented_node() -> None:
    assert _check(example("fractal.plan.v1"), example("fractal.node.v1")) == []


def test_every_mismatch_is_reported_once_where_it_first_occurs() -> None:
    plan = example("fractal.plan.v1")
    descriptor = example("fractal.node.v1")
    plan["node"] = "osney-elm-road-19"
    plan["devices"]["hydro"] = {"kind": "hydro", "windows": [{"start": 0, "end": 1, "mode": "on"}]}
    plan["devices"]["pv"] = {"kind": "pv_inverter", "windows": []}
    descriptor["devices"][2]["capabilities"] = ["balance", "charge"]  # no discharge, no hold

    problems = _check(plan, descriptor)

    assert [(p.path, p.message) for p in problems] == [
        ("node", "the plan is for 'osney-elm-road-19', not 'osney-elm-road-17'"),
        ("devices.battery.setpoints.values[3]", "the device does not accept mode hold"),
        ("devices.battery.setpoints.values[5]", "the device does not accept mode discharge"),
        ("devices.hydro", "node 'osney-elm-road-17' has no device 'hydro'"),
        ("devices.pv.kind", "is a pv at this node, not a pv_inverter"),
    ]


def test_window_modes_are_checked_against_capabilities() -> None:
    plan = example("fractal.plan.v1")
    descriptor = example("fractal.node.v1")
    descriptor["devices"][3]["capabilities"] = ["balance"]  # the EV charger cannot be turned off

    problems = _check(plan, descriptor)

    assert [(p.path, p.message) for p in problems] == [
        ("devices.ev.windows[1].mode", "the device does not accept mode off")
    ]
