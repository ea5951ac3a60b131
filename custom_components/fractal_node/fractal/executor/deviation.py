"""Deviation from the plan's expected trajectories, reported so the aggregator re-plans.

Each check compares the node's SoC and grid power with what the plan expects for the current
slot; a quantity further away than the plan's tolerance for `checks` consecutive checks is a
deviation, and stays one until a check finds it back within the tolerance. Grid power is a
slot mean in the plan and a moment in reality, hence the consecutive checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from ..protocol import Plan, Trajectory
from .model import Readings

CHECKS = 3
"""Consecutive checks beyond the tolerance before a deviation is reported."""


@dataclass(frozen=True)
class Deviation:
    quantity: Trajectory
    plan_id: str
    slot: int
    expected: float
    actual: float
    tolerance: float


@dataclass(frozen=True)
class DeviationState:
    plan_id: str | None = None
    streaks: Mapping[Trajectory, int] = field(default_factory=dict)


def check_deviations(
    plan: Plan | None,
    now: datetime,
    readings: Readings,
    state: DeviationState,
    checks: int = CHECKS,
) -> tuple[DeviationState, list[Deviation]]:
    """The new state and the deviations to report now (empty when none)."""
    slot = None if plan is None else plan.slot_at(now)
    if plan is None or slot is None:
        return DeviationState(), []
    previous = state.streaks if state.plan_id == plan.id else {}
    streaks: dict[Trajectory, int] = {}
    found: list[Deviation] = []
    for quantity, actual in (
        (Trajectory.SOC_PCT, readings.soc),
        (Trajectory.GRID_W, readings.grid),
    ):
        deviation = _beyond(plan, slot, now, quantity, actual)
        streaks[quantity] = previous.get(quantity, 0) + 1 if deviation is not None else 0
        if deviation is not None and streaks[quantity] >= checks:
            found.append(deviation)
    return DeviationState(plan.id, MappingProxyType(streaks)), found


def _beyond(
    plan: Plan, slot: int, now: datetime, quantity: Trajectory, actual: float | None
) -> Deviation | None:
    tolerance = getattr(plan.tolerance, quantity.value, None) if plan.tolerance else None
    expected = _expected(plan, slot, now, quantity)
    if actual is None or expected is None or tolerance is None:
        return None
    if abs(actual - expected) <= tolerance:
        return None
    return Deviation(quantity, plan.id, slot, expected, actual, tolerance)


def _expected(plan: Plan, slot: int, now: datetime, quantity: Trajectory) -> float | None:
    values = getattr(plan.expected, quantity.value, None) if plan.expected else None
    if values is None or values[slot] is None:
        return None
    end = float(values[slot])
    if quantity is not Trajectory.SOC_PCT or slot == 0 or values[slot - 1] is None:
        return end
    # SoC is forecast at the end of each slot: interpolate from the previous slot's end.
    begin = float(values[slot - 1])
    fraction = (now - plan.slot_start(slot)).total_seconds() / plan.step
    return begin + (end - begin) * fraction


@dataclass(frozen=True)
class DeviationReport:
    """One check's outcome for the telemetry snapshot."""

    current: tuple[Trajectory, ...] = ()
    """Trajectories the node is outside the plan's tolerance of now (`deviations`)."""
    new: tuple[Trajectory, ...] = ()
    """Those not reported by the previous check: the news the aggregator re-plans on."""
    details: tuple[Deviation, ...] = ()


@dataclass
class DeviationWatch:
    """`check_deviations` over time: keeps the streaks and what was reported last."""

    checks: int = CHECKS
    _state: DeviationState = field(default_factory=DeviationState)
    _reported: tuple[Trajectory, ...] = ()

    def check(self, plan: Plan | None, now: datetime, readings: Readings) -> DeviationReport:
        """Compare `readings` with `plan` (the aggregator's plan in force) at `now`."""
        self._state, found = check_deviations(plan, now, readings, self._state, self.checks)
        current = tuple(deviation.quantity for deviation in found)
        new = tuple(quantity for quantity in current if quantity not in self._reported)
        self._reported = current
        return DeviationReport(current, new, tuple(found))
