"""Plans arriving in the `plan` named shadow: accepted, rejected with every reason, superseded,
expired; never half-applied."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fractal.executor import Envelope
from fractal.link.plan_inbox import PlanInbox, check_plan
from fractal.protocol import NodeDescriptor, Plan, PlanAck, PlanStatus, Problem, parse
from hypothesis import given
from hypothesis import strategies as st

NODE = "home-1"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def plan_doc(plan_id: str = "p1", *, begin: datetime = T0, **changes: Any) -> dict[str, Any]:
    """A valid 24-hour battery plan at 30-minute steps from `begin`, issued an hour before."""
    document: dict[str, Any] = {
        "schema": "fractal.plan.v1",
        "id": plan_id,
        "node": NODE,
        "issued": iso(begin - timedelta(hours=1)),
        "start": iso(begin),
        "step": 1800,
        "slots": 48,
        "expiry": iso(begin + timedelta(hours=24)),
        "source": "aggregator",
        "devices": {
            "battery": {
                "kind": "battery",
                "windows": [
                    {"start": 0, "end": 8, "mode": "charge", "value": 2500},
                    {"start": 8, "end": 48, "mode": "balance"},
                ],
            }
        },
    }
    document.update(changes)
    return document


def check(raw: object, now: datetime = T0, **options: Any) -> tuple[Plan | None, PlanAck]:
    return check_plan(raw, node_id=NODE, now=now, **options)


def assert_valid_ack(ack: PlanAck) -> None:
    """Every ack we produce is itself a valid protocol document that fits the shadow."""
    assert parse(PlanAck, ack.model_dump(by_alias=True, mode="json")).ok


def test_a_valid_plan_is_accepted_before_it_starts_and_executing_once_it_has() -> None:
    plan, ack = check(plan_doc(), now=T0 - timedelta(minutes=5))
    assert plan is not None
    assert plan.id == "p1"
    assert (ack.id, ack.status, ack.reason) == ("p1", PlanStatus.ACCEPTED, None)
    _, running = check(plan_doc(), now=T0 + timedelta(minutes=5))
    assert running.status is PlanStatus.EXECUTING


def test_json_text_is_accepted_as_well_as_decoded_json() -> None:
    plan, ack = check(json.dumps(plan_doc()))
    assert plan is not None
    assert ack.status is PlanStatus.EXECUTING


def test_every_problem_is_reported_and_nothing_runs() -> None:
    broken = plan_doc()
    broken["devices"]["battery"]["windows"] = [
        {"start": 0, "end": 60, "mode": "charge"},  # past the end, and charge needs a value
        {"start": 10, "end": 5, "mode": "on"},  # backwards, overlapping, not a battery mode
    ]
    plan, ack = check(broken)
    assert plan is None
    assert ack.status is PlanStatus.REJECTED
    assert ack.id == "p1"
    assert ack.reason is not None
    paths = {issue.path for issue in ack.issues}
    assert {
        "devices.battery.windows[0].end",
        "devices.battery.windows[0].value",
        "devices.battery.windows[1].end",
        "devices.battery.windows[1].start",
        "devices.battery.windows[1].mode",
    } <= paths
    assert ack.reason.startswith("devices.battery.windows[0].end: must be <= slots (48); ")
    assert_valid_ack(ack)


@pytest.mark.parametrize(
    ("raw", "expected_id", "fragment"),
    [
        ("not json at all", None, "Invalid JSON"),
        (b"[1, 2, 3]", None, "<document>"),
        (42, None, "must be a JSON object"),
        ([plan_doc()], None, "must be a JSON object"),
        ({}, None, "schema: Field required"),
        ({"id": "../etc/passwd"}, None, "id: String should match pattern"),
        (plan_doc(step=7), "p1", "step"),
        (plan_doc(extra_field=1), "p1", "extra_field: Extra inputs are not permitted"),
        (plan_doc(node="home-2"), "p1", "the plan is for node 'home-2', this is 'home-1'"),
        (plan_doc(expiry=iso(T0 + timedelta(hours=49))), "p1", "at most 48 hours after issued"),
    ],
)
def test_garbage_is_rejected_with_its_reason(raw: object, expected_id: str, fragment: str) -> None:
    plan, ack = check(raw)
    assert plan is None
    assert (ack.id, ack.status) == (expected_id, PlanStatus.REJECTED)
    assert ack.reason is not None
    assert fragment in ack.reason
    assert_valid_ack(ack)


def test_an_expired_or_ended_plan_is_not_run() -> None:
    plan, ack = check(plan_doc(), now=T0 + timedelta(hours=24))
    assert plan is None
    assert ack.status is PlanStatus.EXPIRED
    assert ack.reason == "expired at 2026-03-02T12:00:00+00:00"
    short = plan_doc(slots=4, expiry=iso(T0 + timedelta(hours=10)))
    short["devices"]["battery"]["windows"] = [{"start": 0, "end": 4, "mode": "hold"}]
    plan, ack = check(short, now=T0 + timedelta(hours=3))
    assert plan is None
    assert ack.reason == "ended at 2026-03-01T14:00:00+00:00"


def test_the_envelope_check_can_reject_a_plan() -> None:
    def no_more_than_2kw(plan: Plan) -> list[Problem]:
        windows = plan.devices["battery"].windows or ()
        return [
            Problem(f"devices.battery.windows[{i}].value", "above the 2000 W charge limit")
            for i, window in enumerate(windows)
            if (window.value or 0) > 2000
        ]

    plan, ack = check(plan_doc(), envelope_check=no_more_than_2kw)
    assert plan is None
    assert ack.status is PlanStatus.REJECTED
    assert ack.reason == (
        "outside the safety envelope: devices.battery.windows[0].value: "
        "above the 2000 W charge limit"
    )


def test_a_flood_of_problems_still_gives_an_ack_that_fits_the_shadow() -> None:
    broken = plan_doc()
    broken["devices"]["battery"]["windows"] = [
        {"start": i, "end": i, "mode": "discharge", "value": -1} for i in range(48)
    ]
    _, ack = check(broken)
    assert ack.status is PlanStatus.REJECTED
    assert ack.reason is not None
    assert len(ack.reason) <= 200
    assert ack.reason.startswith("devices.battery.windows[0].end: must be > start (0); ")
    assert ack.reason.endswith(" more not listed)")
    assert 0 < len(ack.issues) <= 16
    assert_valid_ack(ack)


def test_inbox_accepts_supersedes_and_ignores_repeats() -> None:
    inbox = PlanInbox(NODE)
    first = inbox.receive(plan_doc("p1"), T0)
    assert first is not None
    assert first.in_force is not None
    assert (first.ack.id, first.superseded) == ("p1", None)
    assert inbox.receive(plan_doc("p1"), T0 + timedelta(minutes=1)) is None  # reconnect `get`
    second = inbox.receive(plan_doc("p2"), T0 + timedelta(minutes=2))
    assert second is not None
    assert second.ack.id == "p2"
    assert second.in_force is not None
    assert second.in_force.id == "p2"
    assert second.superseded is not None
    assert (second.superseded.id, second.superseded.status) == ("p1", PlanStatus.SUPERSEDED)
    assert second.superseded.reason == "superseded by p2"


def test_a_rejected_plan_leaves_the_plan_in_force_running() -> None:
    inbox = PlanInbox(NODE)
    inbox.receive(plan_doc("p1"), T0)
    decision = inbox.receive(plan_doc("p2", step=7), T0 + timedelta(minutes=1))
    assert decision is not None
    assert decision.ack.status is PlanStatus.REJECTED
    assert decision.superseded is None
    assert decision.in_force is not None
    assert decision.in_force.id == "p1"
    assert inbox.in_force is decision.in_force


def test_time_moves_a_plan_from_accepted_to_executing_to_expired() -> None:
    inbox = PlanInbox(NODE)
    accepted = inbox.receive(plan_doc("p1"), T0 - timedelta(hours=1))
    assert accepted is not None
    assert accepted.ack.status is PlanStatus.ACCEPTED
    assert inbox.tick(T0 - timedelta(minutes=1)) is None
    executing = inbox.tick(T0)
    assert executing is not None
    assert executing.ack.status is PlanStatus.EXECUTING
    assert inbox.tick(T0 + timedelta(hours=1)) is None
    inbox.receive(plan_doc("bad", step=7), T0 + timedelta(hours=2))  # rejected in between
    expired = inbox.tick(T0 + timedelta(hours=24))
    assert expired is not None
    assert (expired.ack.id, expired.ack.status, expired.in_force) == (
        "p1",
        PlanStatus.EXPIRED,
        None,
    )
    assert inbox.in_force is None
    assert inbox.tick(T0 + timedelta(hours=25)) is None


def test_a_plan_that_comes_back_after_a_different_one_is_answered_again() -> None:
    inbox = PlanInbox(NODE)
    inbox.receive(plan_doc("p1"), T0)
    inbox.receive(plan_doc("p2"), T0)
    again = inbox.receive(plan_doc("p1"), T0)
    assert again is not None
    assert again.superseded is not None
    assert again.superseded.id == "p2"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_any_json_value_gets_a_valid_rejection_and_never_an_exception(raw: object) -> None:
    plan, ack = check(raw)
    assert plan is None
    assert ack.status is PlanStatus.REJECTED
    assert_valid_ack(ack)


@given(st.dictionaries(st.sampled_from(sorted(plan_doc())), json_values, max_size=6))
def test_plans_with_fields_replaced_by_garbage_are_never_run(changes: dict[str, Any]) -> None:
    raw = plan_doc(**changes)
    plan, ack = check(raw)
    if not parse(Plan, raw).ok:
        assert plan is None
        assert ack.status is PlanStatus.REJECTED
    assert_valid_ack(ack)


def battery_envelope(max_charge_w: int) -> Envelope:
    descriptor = parse(
        NodeDescriptor,
        {
            "schema": "fractal.node.v1",
            "node": NODE,
            "name": "Home",
            "software": "0.1.0",
            "link": "local",
            "devices": [
                {
                    "id": "battery",
                    "kind": "battery",
                    "capabilities": ["balance", "charge"],
                    "envelope": {"max_charge_w": max_charge_w, "capacity_wh": 10_000},
                }
            ],
        },
    ).document
    assert descriptor is not None
    return Envelope(descriptor)


def test_a_plan_over_the_envelope_is_accepted_with_every_clamped_part_listed() -> None:
    envelope = battery_envelope(max_charge_w=2000)
    inbox = PlanInbox(NODE, envelope.envelope_check, envelope.clamped_parts)

    decision = inbox.receive(plan_doc("p1"), T0 - timedelta(minutes=5))

    assert decision is not None
    assert decision.in_force is not None  # clamped, not rejected: the rest runs as planned
    assert decision.ack.status is PlanStatus.ACCEPTED
    assert [(issue.path, issue.message) for issue in decision.ack.clamped] == [
        ("devices.battery.windows[0].value", "charge 2500 W limited to max_charge_w 2000 W")
    ]
    assert_valid_ack(decision.ack)
    executing = inbox.tick(T0)  # every later acknowledgement of the plan still says so
    assert executing is not None
    assert executing.ack.status is PlanStatus.EXECUTING
    assert executing.ack.clamped == decision.ack.clamped


def test_a_plan_inside_the_envelope_is_acknowledged_with_nothing_clamped() -> None:
    envelope = battery_envelope(max_charge_w=3000)
    inbox = PlanInbox(NODE, envelope.envelope_check, envelope.clamped_parts)
    decision = inbox.receive(plan_doc("p1"), T0)
    assert decision is not None
    assert decision.ack.status is PlanStatus.EXECUTING
    assert decision.ack.clamped == ()


def test_a_plan_clamped_in_every_slot_lists_sixteen_and_counts_the_rest() -> None:
    envelope = battery_envelope(max_charge_w=1000)
    document = plan_doc("p1")
    document["devices"]["battery"] = {
        "kind": "battery",
        "setpoints": {"quantity": "battery_w", "values": [1500] * 48},
    }
    _, ack = check(document, clamp_check=envelope.clamped_parts)
    assert ack.status is PlanStatus.EXECUTING
    assert len(ack.clamped) == 16
    assert ack.clamped[0].path == "devices.battery.setpoints.values[0]"
    assert ack.reason == "32 more not listed"
    assert_valid_ack(ack)
