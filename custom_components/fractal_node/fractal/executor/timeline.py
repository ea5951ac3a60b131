"""The plans in force as a timeline: what each device runs when, and from which plan.

Computed with `choose`, the very function the executor decides with, at every time any plan's
command can change, so the calendar and the plan entities show what the executor will do (the
override, DSO, aggregator and default plans by priority, per device).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from ..protocol import Command, Device, Plan
from .decide import CONVERTERS, choose
from .model import SAFE_DEFAULT, Sources


@dataclass(frozen=True)
class Segment:
    """Device ``device`` runs ``command`` from ``start`` to ``end`` as ``source`` plans it."""

    device: str
    start: datetime
    end: datetime
    command: Command
    source: str
    plan_id: str | None


def controllable(devices: Iterable[Device]) -> list[Device]:
    """The devices the executor commands, in its order (batteries first)."""
    found = list(devices)
    return [device for kind in CONVERTERS for device in found if device.kind is kind]


def timeline(
    sources: Sources, devices: Iterable[Device], start: datetime, end: datetime
) -> list[Segment]:
    """Every device's runs of equal commands overlapping ``start`` to ``end``, whole (not cut
    at the range); times no plan covers (the executor's built-in safe default) are left out."""
    plans = [plan for plan in sources.by_priority() if plan is not None]
    if not plans:
        return []
    span_start = min(plan.start for plan in plans)
    span_end = max(min(plan.end, plan.expiry) for plan in plans)
    moments = _boundaries(plans, span_start, span_end)
    segments: list[Segment] = []
    for device in controllable(devices):
        current: Segment | None = None
        for begin, finish in pairwise(moments):
            chosen = choose(device, begin, sources)
            if chosen.command is None or chosen.source == SAFE_DEFAULT:
                current = None
                continue
            key = (chosen.command, chosen.source, chosen.plan_id)
            if current is not None and (current.command, current.source, current.plan_id) == key:
                segments[-1] = current = Segment(device.id, current.start, finish, *key)
            else:
                current = Segment(device.id, begin, finish, *key)
                segments.append(current)
    overlapping = [s for s in segments if s.end > start and s.start < end]
    return sorted(overlapping, key=lambda segment: (segment.start, segment.device))


def _boundaries(plans: list[Plan], start: datetime, end: datetime) -> list[datetime]:
    """``start``, ``end`` and every slot start, end and expiry of the plans in between."""
    found = {start, end}
    for plan in plans:
        found.update(t for t in (plan.end, plan.expiry) if start < t < end)
        for slot in range(plan.slots):
            moment = plan.slot_start(slot)
            if moment >= end:
                break
            if moment > start:
                found.add(moment)
    return sorted(found)


def plan_in_force(sources: Sources, now: datetime) -> Plan | None:
    """The highest-priority plan with a command for some device now."""
    for plan in sources.by_priority():
        slot = plan.slot_at(now) if plan is not None else None
        if plan is None or slot is None:
            continue
        if any(device.command_at(slot) is not None for device in plan.devices.values()):
            return plan
    return None


def expected_soc(sources: Sources, now: datetime) -> float | None:
    """The state of charge (%) the highest plan in force forecasting one expects now: its
    trajectory (end-of-slot values) interpolated within the slot."""
    for plan in sources.by_priority():
        slot = plan.slot_at(now) if plan is not None else None
        if plan is None or slot is None or plan.expected is None:
            continue
        trajectory = plan.expected.soc_pct
        if trajectory is None or slot >= len(trajectory) or trajectory[slot] is None:
            continue
        end_value = float(trajectory[slot] or 0)
        before = trajectory[slot - 1] if slot > 0 else None
        if before is None:
            return end_value
        share = (now - plan.slot_start(slot)).total_seconds() / plan.step
        return float(before) + (end_value - float(before)) * share
    return None
