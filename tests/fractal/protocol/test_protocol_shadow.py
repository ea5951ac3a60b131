"""The protocol's shadow claims, checked against our shadow engine (AWS IoT semantics)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fractal.protocol import (
    Plan,
    PlanAck,
    PlanStatus,
    Problem,
    dump,
    parse,
    replacing_payload,
    shadow_payload,
    shadow_size,
    to_jsonable,
)

from aggregator_cloud.local.shadow.store import Rejection, ShadowStore
from tests.fractal.protocol.protocol_examples import example
from tests.fractal.protocol.protocol_strategies import full_home_plan

NODE = "osney-elm-road-17"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ShadowStore]:
    shadows = ShadowStore(tmp_path / "shadows.sqlite")
    yield shadows
    shadows.close()


def _write(store: ShadowStore, payload: str) -> None:
    result = store.update(NODE, "plan", payload.encode())
    assert not isinstance(result, Rejection), result


def _desired_plan(store: ShadowStore) -> Any:
    document = store.get(NODE, "plan")
    assert not isinstance(document, Rejection), document
    return document["state"]["desired"]["plan"]


def _plan(raw: dict[str, Any]) -> Plan:
    plan = parse(Plan, raw).document
    assert plan is not None
    return plan


def test_a_replacing_payload_leaves_exactly_the_new_plan(store: ShadowStore) -> None:
    old = _plan(example("fractal.plan.v1"))
    new_raw = example("fractal.plan.v1")
    new_raw["id"] = "agg-20261122T1155Z-elm17"
    del new_raw["event"], new_raw["devices"]["grid"], new_raw["tolerance"]
    new_raw["devices"]["ev"] = {
        "kind": "ev_charger",
        "setpoints": {"quantity": "ev_current_a", "values": [16, 16, 0, 0, 6, 6, None, None]},
    }
    new = _plan(new_raw)
    _write(store, shadow_payload(old))

    _write(store, replacing_payload(new, _desired_plan(store)))

    assert _desired_plan(store) == to_jsonable(new)
    assert parse(Plan, _desired_plan(store)).document == new


def test_a_plain_payload_would_leave_parts_of_the_old_plan_behind(store: ShadowStore) -> None:
    old = _plan(example("fractal.plan.v1"))
    new_raw = example("fractal.plan.v1")
    del new_raw["event"]
    new_raw["devices"]["ev"] = {
        "kind": "ev_charger",
        "setpoints": {"quantity": "ev_current_a", "values": [16] * 8},
    }
    _write(store, shadow_payload(old))

    _write(store, shadow_payload(_plan(new_raw)))

    merged = parse(Plan, _desired_plan(store))
    # The old windows stayed next to the new set-points, and the old event id stayed too.
    assert [(p.path, p.message) for p in merged.problems] == [
        ("devices.ev", "needs exactly one of windows or setpoints")
    ]
    assert _desired_plan(store)["event"] == old.event


def test_the_largest_plan_and_ack_fit_one_shadow_together(store: ShadowStore) -> None:
    plan = full_home_plan(900, random.Random(2026))  # 192 slots: close to the plan's budget
    problems = [
        Problem(f"devices.battery.setpoints.values[{slot}]", "limited to max_discharge_w " * 9)
        for slot in range(40)
    ]
    ack = PlanAck.fitted(
        plan_id=plan.id,
        status=PlanStatus.EXECUTING,
        ts=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        reason="clamped to the envelope " * 9,
        clamped=problems,
    )

    assert shadow_size(plan) + shadow_size(ack) > 7500  # both near their budgets
    _write(store, shadow_payload(plan))
    _write(store, shadow_payload(ack))

    document = store.get(NODE, "plan")
    assert not isinstance(document, Rejection)
    assert document["state"]["reported"]["plan"] == to_jsonable(ack)
    assert dump(plan) in shadow_payload(plan)
