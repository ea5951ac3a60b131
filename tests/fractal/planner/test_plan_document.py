"""Planner results as protocol Plan documents."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from fractal.planner.document import battery_plan, ev_plan, plan_id
from fractal.protocol import Command, Mode, Quantity


def signed_w(command: Command | None) -> float:
    """A slot's command as battery power, W (> 0 charging)."""
    assert command is not None
    if command.mode is Mode.HOLD:
        return 0.0
    assert command.value is not None
    return command.value if command.mode is Mode.CHARGE else -command.value


def test_long_runs_of_equal_power_become_windows() -> None:
    powers = np.array([2.0] * 20 + [0.0] * 4 + [-1.5] * 24)
    device = battery_plan(powers)
    assert device.setpoints is None
    assert device.windows is not None
    assert [(w.start, w.end, w.mode, w.value) for w in device.windows] == [
        (0, 20, Mode.CHARGE, 2000),
        (20, 24, Mode.HOLD, None),
        (24, 48, Mode.DISCHARGE, 1500),
    ]
    assert [signed_w(device.command_at(t)) for t in range(48)] == list(powers * 1000)


def test_short_runs_stay_per_slot_setpoints() -> None:
    device = battery_plan(np.array([2.0, 2.0, 0.0, -1.5]))
    assert device.windows is None
    assert device.setpoints is not None
    assert device.setpoints.values == (2000, 2000, 0, -1500)


def test_ever_changing_power_becomes_per_slot_setpoints() -> None:
    powers = np.array([0.1 * slot for slot in range(48)])
    device = battery_plan(powers)
    assert device.setpoints is not None
    assert device.setpoints.quantity is Quantity.BATTERY_W
    assert device.setpoints.values == tuple(round(p * 1000) for p in powers)
    for slot, kw in enumerate(powers):
        assert signed_w(device.command_at(slot)) == pytest.approx(kw * 1000, abs=0.5)


def test_ev_slots_below_the_minimum_current_get_the_minimum() -> None:
    device = ev_plan(np.array([0.0, 0.7, 3.68, 7.4]), min_kw=1.38, max_kw=7.4)
    assert device.setpoints is not None
    # 230 V single phase: 1.38 kW is 6 A, 3.68 kW is 16 A, 7.4 kW is 32.2 A.
    assert device.setpoints.values == (0.0, 6.0, 16.0, 32.2)


def test_plan_ids_are_stable_short_and_distinct_per_home() -> None:
    start = datetime(2026, 11, 22, tzinfo=UTC)
    assert plan_id("elm-1", start) == plan_id("elm-1", start)
    assert plan_id("elm-1", start) != plan_id("elm-2", start)
    assert plan_id("x" * 128, start).startswith("plan-20261122T0000Z-")
    assert len(plan_id("x" * 128, start)) <= 64
