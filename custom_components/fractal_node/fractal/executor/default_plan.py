"""The node's local default plan: a safe time-of-use plan for when no valid plan is active.

Batteries balance all day (self-consumption: never import to export), optionally charging in
a cheap window (e.g. an overnight tariff). It runs when the aggregator's plan has expired or
was never received, including when the link is lost: a plan that is not refreshed reaches its
expiry, and `decide` falls through to this one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from ..protocol import (
    MAX_HORIZON,
    DeviceKind,
    DevicePlan,
    Mode,
    NodeDescriptor,
    Plan,
    PlanSource,
    Step,
    Window,
)

STEP_S: Step = 1800
SLOTS = int(MAX_HORIZON.total_seconds()) // STEP_S


@dataclass(frozen=True)
class CheapWindow:
    """Daily UTC times to charge batteries at up to `charge_w` (may wrap past midnight)."""

    start: time
    end: time
    charge_w: int

    def covers(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


def default_plan(
    descriptor: NodeDescriptor, now: datetime, cheap: CheapWindow | None = None
) -> Plan:
    """48 hours from the start of `now`'s UTC day, in 30-minute slots."""
    start = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    devices = {
        device.id: DevicePlan(
            kind=DeviceKind.BATTERY,
            windows=_battery_windows(start, cheap, device.envelope.max_charge_w),
        )
        for device in descriptor.devices
        if device.kind is DeviceKind.BATTERY
    }
    return Plan(
        id=f"default-{start:%Y%m%d}",
        node=descriptor.node,
        issued=start,
        start=start,
        step=STEP_S,
        slots=SLOTS,
        expiry=start + MAX_HORIZON,
        source=PlanSource.DEFAULT,
        devices=devices,
    )


def _battery_windows(
    start: datetime, cheap: CheapWindow | None, max_charge_w: int | None
) -> tuple[Window, ...]:
    charge_w = min(cheap.charge_w, max_charge_w or 0) if cheap is not None else 0
    modes = [
        Mode.CHARGE if cheap is not None and charge_w > 0 and cheap.covers(moment) else Mode.BALANCE
        for moment in ((start + timedelta(seconds=STEP_S * slot)).time() for slot in range(SLOTS))
    ]
    windows, slot = [], 0
    for mode, run in itertools.groupby(modes):
        length = len(list(run))
        value = charge_w if mode is Mode.CHARGE else None
        windows.append(Window(start=slot, end=slot + length, mode=mode, value=value))
        slot += length
    return tuple(windows)
