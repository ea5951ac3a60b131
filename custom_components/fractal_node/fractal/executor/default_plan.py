"""The node's local default plan: a safe time-of-use plan for when no valid plan is active.

Batteries balance all day (self-consumption: never import to export), optionally charging in
a cheap window (e.g. an overnight tariff). It runs when the aggregator's plan has expired or
was never received, including when the link is lost: a plan that is not refreshed reaches its
expiry, and `decide` falls through to this one.

Without a cheap window the default only balances: that is the safe time-of-use default, since
charging from the grid pays only where the night is cheaper. A cheap window is given in the
tariff's own local time (`CheapWindow.parse("00:30-04:30", 3000, ZoneInfo("Europe/London"))`
for Octopus Go), so it stays on the tariff's hours across daylight-saving changes.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

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


_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class CheapWindow:
    """Daily times to charge batteries at up to `charge_w` (may wrap past midnight), in `tz`
    (UTC unless given)."""

    start: time
    end: time
    charge_w: int
    tz: tzinfo = UTC

    def covers(self, moment: time) -> bool:
        """Whether the wall-clock time `moment` (in `tz`) is inside the window."""
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def covers_at(self, when: datetime) -> bool:
        """Whether the instant `when` (timezone-aware) is inside the window."""
        return self.covers(when.astimezone(self.tz).time().replace(tzinfo=None))

    @classmethod
    def parse(cls, text: str, charge_w: int, tz: tzinfo = UTC) -> CheapWindow:
        """`"HH:MM-HH:MM"` (e.g. `"23:30-05:30"`); raises ValueError saying what is wrong."""
        found = _WINDOW.match(text)
        if found is None:
            raise ValueError(f"cheap window {text!r}: expected HH:MM-HH:MM, e.g. 00:30-04:30")
        hour1, minute1, hour2, minute2 = (int(part) for part in found.groups())
        try:
            start, end = time(hour1, minute1), time(hour2, minute2)
        except ValueError as error:
            raise ValueError(f"cheap window {text!r}: {error}") from None
        if start == end:
            raise ValueError(f"cheap window {text!r}: starts and ends at the same time")
        if charge_w <= 0:
            raise ValueError(f"cheap window charge power must be > 0 W, not {charge_w}")
        return cls(start, end, charge_w, tz)


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
        Mode.CHARGE
        if cheap is not None and charge_w > 0 and cheap.covers_at(moment)
        else Mode.BALANCE
        for moment in (start + timedelta(seconds=STEP_S * slot) for slot in range(SLOTS))
    ]
    windows, slot = [], 0
    for mode, run in itertools.groupby(modes):
        length = len(list(run))
        value = charge_w if mode is Mode.CHARGE else None
        windows.append(Window(start=slot, end=slot + length, mode=mode, value=value))
        slot += length
    return tuple(windows)
