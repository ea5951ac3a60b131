"""Each rule a document can break is reported with its path and a message that says why."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fractal.protocol import (
    ACK_BUDGET,
    FlexibilityEvent,
    NodeDescriptor,
    Plan,
    PlanAck,
    PlanStatus,
    Problem,
    TelemetryBatch,
    TelemetrySnapshot,
    dump,
    parse,
    shadow_size,
)

Raw = dict[str, Any]


def plan_raw() -> Raw:
    """A valid 4-slot plan, as JSON would deliver it."""
    return {
        "schema": "fractal.plan.v1",
        "id": "p-20261122-1",
        "node": "home-17",
        "issued": "2026-11-22T09:55:00Z",
        "start": "2026-11-22T10:00:00Z",
        "step": 1800,
        "slots": 4,
        "expiry": "2026-11-22T12:00:00Z",
        "source": "aggregator",
        "devices": {
            "battery": {
                "kind": "battery",
                "windows": [
                    {"start": 0, "end": 2, "mode": "charge", "value": 2500},
                    {"start": 2, "end": 4, "mode": "balance"},
                ],
            },
            "ev": {
                "kind": "ev_charger",
                "setpoints": {"quantity": "ev_current_a", "values": [16, 0, None, 6.5]},
            },
        },
        "expected": {"soc_pct": [40.5, 55, 54.5, 50], "grid_w": [3100, 800, 0, -200]},
        "tolerance": {"soc_pct": 10, "grid_w": 1500},
    }


def problems_of(model: type[Any], raw: Raw) -> list[Problem]:
    parsed = parse(model, raw)
    assert parsed.document is None
    return list(parsed.problems)


def test_the_base_plan_is_valid() -> None:
    assert parse(Plan, plan_raw()).problems == ()


def _set(path: str, value: Any) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        *parents, last = path.split("/")
        target: Any = raw
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[int(last) if isinstance(target, list) else last] = value

    return mutate


def _delete(path: str) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        *parents, last = path.split("/")
        target: Any = raw
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        del target[last]

    return mutate


PLAN_CASES = [
    (
        "window past the end",
        _set("devices/battery/windows/1/end", 5),
        "devices.battery.windows[1].end",
        "must be <= slots (4)",
    ),
    (
        "empty window",
        _set("devices/battery/windows/0/end", 0),
        "devices.battery.windows[0].end",
        "must be > start (0)",
    ),
    (
        "overlapping windows",
        _set("devices/battery/windows/1/start", 1),
        "devices.battery.windows[1].start",
        "overlaps",
    ),
    (
        "mode not for kind",
        _set("devices/battery/windows/1/mode", "ev_current"),
        "devices.battery.windows[1].mode",
        "ev_current is not valid for a battery device",
    ),
    (
        "charge without power",
        _delete("devices/battery/windows/0/value"),
        "devices.battery.windows[0].value",
        "needs a value in W",
    ),
    (
        "charge at zero",
        _set("devices/battery/windows/0/value", 0),
        "devices.battery.windows[0].value",
        "must be > 0 W",
    ),
    (
        "fractional watts",
        _set("devices/battery/windows/0/value", 2500.5),
        "devices.battery.windows[0].value",
        "whole number",
    ),
    (
        "balance with a value",
        _set("devices/battery/windows/1/value", 100),
        "devices.battery.windows[1].value",
        "takes no value",
    ),
    (
        "too few set-points",
        _set("devices/ev/setpoints/values", [16, 16, 16]),
        "devices.ev.setpoints.values",
        "has 3 values, needs one per slot (4)",
    ),
    (
        "negative current",
        _set("devices/ev/setpoints/values/1", -6),
        "devices.ev.setpoints.values[1]",
        "must be >= 0 A",
    ),
    (
        "quantity not for kind",
        _set("devices/ev/setpoints/quantity", "battery_w"),
        "devices.ev.setpoints.quantity",
        "battery_w is not valid for a ev_charger device",
    ),
    (
        "both windows and set-points",
        _set("devices/ev/windows", []),
        "devices.ev",
        "exactly one of windows or setpoints",
    ),
    (
        "neither",
        _delete("devices/ev/setpoints"),
        "devices.ev",
        "exactly one of windows or setpoints",
    ),
    (
        "expiry before start",
        _set("expiry", "2026-11-22T09:59:00Z"),
        "expiry",
        "must be after start",
    ),
    (
        "expiry too far",
        _set("expiry", "2026-11-24T09:55:01Z"),
        "expiry",
        "at most 48 hours after issued",
    ),
    (
        "trajectory length",
        _set("expected/grid_w", [1, 2]),
        "expected.grid_w",
        "has 2 values, needs one per slot (4)",
    ),
    ("step not allowed", _set("step", 1000), "step", "Input should be 300, 600, 900, 1800 or 3600"),
    ("naive timestamp", _set("issued", "2026-11-22T09:55:00"), "issued", "timezone"),
    (
        "power as text",
        _set("devices/battery/windows/0/value", "2500"),
        "devices.battery.windows[0].value",
        "valid number",
    ),
    (
        "soc over 100",
        _set("expected/soc_pct/2", 100.5),
        "expected.soc_pct[2]",
        "less than or equal to 100",
    ),
    (
        "bad device id",
        _set("devices/bad id!", {"kind": "immersion", "windows": []}),
        "devices.bad id!.(key)",
        "pattern",
    ),
    ("unknown field", _set("colour", "red"), "colour", "Extra inputs are not permitted"),
    (
        "unknown mode",
        _set("devices/battery/windows/1/mode", "turbo"),
        "devices.battery.windows[1].mode",
        "Input should be",
    ),
    ("wrong schema", _set("schema", "fractal.plan.v2"), "schema", "'fractal.plan.v1'"),
]


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [case[1:] for case in PLAN_CASES],
    ids=[case[0] for case in PLAN_CASES],
)
def test_plan_rule_is_reported(mutate: Callable[[Raw], None], path: str, message: str) -> None:
    raw = plan_raw()
    mutate(raw)

    problems = problems_of(Plan, raw)

    assert [problem.path for problem in problems] == [path], problems
    assert message in problems[0].message


def test_all_semantic_problems_are_reported_together() -> None:
    raw = plan_raw()
    raw["expiry"] = "2026-11-22T09:00:00Z"
    raw["devices"]["battery"]["windows"][1]["start"] = 1
    raw["devices"]["battery"]["windows"][1]["mode"] = "on"
    raw["devices"]["ev"]["setpoints"]["values"] = [16, 40.5, -1]
    raw["expected"]["soc_pct"] = [50]

    paths = [problem.path for problem in problems_of(Plan, raw)]

    assert paths == [
        "expiry",
        "devices.battery.windows[1].start",
        "devices.battery.windows[1].mode",
        "devices.ev.setpoints.values",
        "devices.ev.setpoints.values[2]",
        "expected.soc_pct",
    ]


def test_all_structural_problems_are_reported_together() -> None:
    raw = plan_raw()
    raw["step"] = 1000
    raw["devices"]["battery"]["windows"][0]["value"] = "fast"
    raw["expected"]["grid_w"][1] = 1.5
    del raw["node"]

    paths = {problem.path for problem in problems_of(Plan, raw)}

    assert paths == {"step", "devices.battery.windows[0].value", "expected.grid_w[1]", "node"}


def test_a_plan_may_not_run_past_48_hours() -> None:
    raw = plan_raw()
    raw["step"] = 3600
    raw["slots"] = 49
    raw["devices"] = {}
    del raw["expected"]

    problems = problems_of(Plan, raw)

    assert [(p.path, p.message) for p in problems] == [
        ("slots", "slots x step must not exceed 48 hours")
    ]


def test_a_window_starting_past_the_end_is_reported_on_both_bounds() -> None:
    raw = plan_raw()
    raw["devices"]["battery"]["windows"][1] = {"start": 4, "end": 4, "mode": "hold"}

    problems = problems_of(Plan, raw)

    assert [(p.path, p.message) for p in problems] == [
        ("devices.battery.windows[1].start", "must be < slots (4)"),
        ("devices.battery.windows[1].end", "must be > start (4)"),
    ]


def test_a_plan_over_the_shadow_limit_is_refused_with_its_size() -> None:
    raw = plan_raw()
    raw["step"] = 300
    raw["slots"] = 576
    raw["expiry"] = "2026-11-24T09:00:00Z"
    raw["devices"] = {
        name: {"kind": "battery", "setpoints": {"quantity": "battery_w", "values": [-2345] * 576}}
        for name in ("b1", "b2")
    }
    raw["expected"] = {}

    problems = problems_of(Plan, raw)

    assert len(problems) == 1
    assert problems[0].path == ""
    assert "over the 6144-byte limit" in problems[0].message


def test_direct_construction_refuses_a_broken_plan_with_every_reason() -> None:
    document = parse(Plan, plan_raw()).document
    assert document is not None
    fields = dict(document)
    fields["slots"] = 1
    with pytest.raises(ValueError, match=r"windows\[0\]\.end.*windows\[1\]\.start"):
        Plan(**fields)


def descriptor_raw() -> Raw:
    return {
        "schema": "fractal.node.v1",
        "node": "home-17",
        "name": "17 Elm Road",
        "tags": {"street": "Elm Road", "feeder": "F12"},
        "software": "0.1.0",
        "link": "local",
        "devices": [
            {
                "id": "battery",
                "kind": "battery",
                "capabilities": ["balance", "charge", "discharge"],
                "envelope": {"max_charge_w": 3000, "soc_min_pct": 10, "soc_max_pct": 95},
            },
            {
                "id": "ev",
                "kind": "ev_charger",
                "envelope": {"ev_current_min_a": 6, "ev_current_max_a": 32},
            },
        ],
        "envelope": {"import_max_w": 15000, "export_max_w": 3680},
    }


DESCRIPTOR_CASES = [
    (
        "capability not for kind",
        _set("devices/1/capabilities", ["ev_current", "level"]),
        "devices[1].capabilities[1]",
        "level is not valid for a ev_charger",
    ),
    (
        "envelope limit not for kind",
        _set("devices/1/envelope/level_max_m", 2.5),
        "devices[1].envelope.level_max_m",
        "does not apply to a ev_charger",
    ),
    (
        "soc bounds inverted",
        _set("devices/0/envelope/soc_min_pct", 96),
        "devices[0].envelope.soc_min_pct",
        "must be <= soc_max_pct",
    ),
    ("duplicate device id", _set("devices/1/id", "battery"), "devices", "'battery' is used twice"),
    ("tag key", _set("tags/Street", "x"), "tags.Street.(key)", "pattern"),
    ("empty tag value", _set("tags/street", ""), "tags.street", "at least 1 character"),
    ("thing name", _set("node", "home 17"), "node", "pattern"),
    ("link", _set("link", "wifi"), "link", "Input should be"),
]


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [case[1:] for case in DESCRIPTOR_CASES],
    ids=[case[0] for case in DESCRIPTOR_CASES],
)
def test_descriptor_rule_is_reported(
    mutate: Callable[[Raw], None], path: str, message: str
) -> None:
    assert parse(NodeDescriptor, descriptor_raw()).problems == ()
    raw = descriptor_raw()
    mutate(raw)

    problems = problems_of(NodeDescriptor, raw)

    assert [problem.path for problem in problems] == [path], problems
    assert message in problems[0].message


def batch_raw() -> Raw:
    return {
        "schema": "fractal.telemetry_batch.v1",
        "node": "home-17",
        "seq": 12,
        "samples": [
            {"seq": 100, "ts": "2026-11-22T10:00:00Z", "grid_w": 420.5, "pv_w": 1200},
            {"seq": 101, "ts": "2026-11-22T10:00:10Z", "grid_w": 400, "battery_w": -300},
            {"seq": 105, "ts": "2026-11-22T10:00:20Z", "soc_pct": 55.5},
        ],
    }


def test_batch_samples_must_increase() -> None:
    assert parse(TelemetryBatch, batch_raw()).problems == ()
    raw = batch_raw()
    raw["samples"][1]["seq"] = 100
    raw["samples"][2]["ts"] = "2026-11-22T09:59:59Z"

    problems = problems_of(TelemetryBatch, raw)

    assert [(p.path, p.message) for p in problems] == [
        ("samples[1].seq", "must be greater than the previous sample's (100)"),
        ("samples[2].ts", "must not be earlier than the previous sample's"),
    ]


def test_batch_over_the_message_limit_is_refused() -> None:
    raw = batch_raw()
    sample = {"ts": "2026-11-22T10:00:00Z", "grid_w": 420.123, "pv_w": 1200.5, "load_w": 780.25}
    raw["samples"] = [{"seq": seq, **sample} for seq in range(2000)]

    problems = problems_of(TelemetryBatch, raw)

    assert [problem.path for problem in problems] == [""]
    assert "over the 131072-byte limit" in problems[0].message


def test_empty_batch_is_refused() -> None:
    raw = batch_raw()
    raw["samples"] = []

    assert [problem.path for problem in problems_of(TelemetryBatch, raw)] == ["samples"]


def test_telemetry_sign_conventions_are_enforced() -> None:
    raw: Raw = {
        "schema": "fractal.telemetry.v1",
        "node": "home-17",
        "seq": 1,
        "ts": "2026-11-22T10:00:00+01:00",
        "grid_w": -500,
        "battery_w": -1200,
        "pv_w": -3,
        "load_w": -1,
        "soc_pct": 101,
        "deviations": ["grid_w", "grid_w"],
    }

    paths = [problem.path for problem in problems_of(TelemetrySnapshot, raw)]

    assert paths == ["pv_w", "load_w", "soc_pct"]
    del raw["pv_w"], raw["load_w"], raw["soc_pct"]
    assert [p.path for p in problems_of(TelemetrySnapshot, raw)] == ["deviations[1]"]


def test_offsets_are_normalised_to_utc() -> None:
    raw = plan_raw()
    raw["start"] = "2026-11-22T11:00:00+01:00"

    plan = parse(Plan, raw).document

    assert plan is not None
    assert plan.start.isoformat() == "2026-11-22T10:00:00+00:00"


def test_rejection_needs_a_reason() -> None:
    raw: Raw = {
        "schema": "fractal.plan_ack.v1",
        "id": "p1",
        "status": "rejected",
        "ts": "2026-11-22T10:00:00Z",
    }

    problems = problems_of(PlanAck, copy.deepcopy(raw))

    assert [(p.path, p.message) for p in problems] == [
        ("reason", "is required when the plan is rejected")
    ]
    raw["reason"] = "expired before it arrived"
    assert parse(PlanAck, raw).ok


def test_flexibility_event_must_end_after_it_starts() -> None:
    raw: Raw = {
        "schema": "fractal.flex_event.v1",
        "id": "ssen-2026-11-22-17",
        "issued": "2026-11-22T09:00:00Z",
        "source": "SSEN",
        "group": {"feeder": "F12"},
        "direction": "down",
        "power_w": 50000,
        "start": "2026-11-22T17:00:00Z",
        "end": "2026-11-22T17:00:00Z",
    }

    assert [p.path for p in problems_of(FlexibilityEvent, raw)] == ["end"]
    raw["power_w"] = 0
    raw["end"] = "2026-11-22T19:00:00Z"
    assert [p.path for p in problems_of(FlexibilityEvent, raw)] == ["power_w"]


def test_a_fitted_ack_reports_what_fits_and_counts_the_rest() -> None:
    problems = [
        Problem(f"devices.battery.windows[{index}].value", "x" * 300) for index in range(40)
    ]
    ts = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

    ack = PlanAck.fitted(plan_id="p1", status=PlanStatus.REJECTED, ts=ts, issues=problems)

    assert shadow_size(ack) <= ACK_BUDGET
    assert ack.reason is not None
    assert ack.reason.endswith(f"({40 - len(ack.issues)} more not listed)")
    assert ack.issues[0].path == "devices.battery.windows[0].value"
    assert len(ack.issues[0].message) == 200
    assert parse(PlanAck, dump(ack)).document == ack


def test_a_fitted_ack_for_a_plan_without_an_id_uses_the_first_problem_as_reason() -> None:
    parsed = parse(Plan, b"not json")
    ts = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

    ack = PlanAck.fitted(plan_id=None, status=PlanStatus.REJECTED, ts=ts, issues=parsed.problems)

    assert ack.id is None
    assert ack.reason == parsed.problems[0].message
    assert [issue.path for issue in ack.issues] == [""]


def test_only_a_rejection_may_leave_out_the_plan_id() -> None:
    ts = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="id: is required when the plan is accepted"):
        PlanAck.fitted(plan_id=None, status=PlanStatus.ACCEPTED, ts=ts)
