"""Plan: what each device does in each time slot for up to 48 hours."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar, Literal, NamedTuple

from pydantic import Field

from .base import PLAN_BUDGET, Document, Problem, Record, join_path
from .rules import MODES_BY_KIND, QUANTITY_BY_KIND, SETPOINT_RULES, VALUE_RULES
from .types import (
    DeviceId,
    DeviceKind,
    DocumentId,
    Mode,
    NodeId,
    NonNegPowerW,
    Number,
    Percent,
    PlanSource,
    PowerW,
    Quantity,
    Seq,
    UtcDatetime,
)

MAX_HORIZON = timedelta(hours=48)
Step = Literal[300, 600, 900, 1800, 3600]
"""Allowed slot lengths, seconds."""
STEPS_S: tuple[Step, ...] = (300, 600, 900, 1800, 3600)
MAX_SLOTS = int(MAX_HORIZON.total_seconds()) // STEPS_S[0]


class Command(NamedTuple):
    """What a device does in one slot: a mode and, for modes that take one, a value."""

    mode: Mode
    value: float | None = None


class Window(Record):
    """Slots `start` (inclusive) to `end` (exclusive) run in `mode`."""

    start: Seq
    end: Seq
    mode: Mode
    value: Number | None = None
    """W for charge, discharge and export_limit; A for ev_current; m for level."""


class Setpoints(Record):
    """One value per slot; null means the device's default for that slot."""

    quantity: Quantity
    values: tuple[Number | None, ...] = Field(max_length=MAX_SLOTS)


class DevicePlan(Record):
    """Exactly one of `windows` or `setpoints`."""

    kind: DeviceKind
    windows: tuple[Window, ...] | None = Field(default=None, max_length=MAX_SLOTS)
    setpoints: Setpoints | None = None

    def command_at(self, slot: int) -> Command | None:
        """The command for `slot`, or None for the device's default behaviour."""
        if self.setpoints is not None:
            values = self.setpoints.values
            value = values[slot] if 0 <= slot < len(values) else None
            return None if value is None else _setpoint_command(self.setpoints.quantity, value)
        for window in self.windows or ():
            if window.start <= slot < window.end:
                return Command(window.mode, window.value)
        return None

    def mode_at(self, slot: int) -> Mode | None:
        command = self.command_at(slot)
        return None if command is None else command.mode

    def value_at(self, slot: int) -> float | None:
        command = self.command_at(slot)
        return None if command is None else command.value

    def problems(self, slots: int, path: str) -> list[Problem]:
        if (self.windows is None) == (self.setpoints is None):
            return [Problem(path, "needs exactly one of windows or setpoints")]
        if self.setpoints is not None:
            return _setpoint_problems(
                self.kind, self.setpoints, slots, join_path(path, "setpoints")
            )
        return _windows_problems(self.kind, self.windows or (), slots, join_path(path, "windows"))


def _setpoint_command(quantity: Quantity, value: float) -> Command:
    """Set-points expressed as the mode and value a window would give."""
    match quantity:
        case Quantity.BATTERY_W if value > 0:
            return Command(Mode.CHARGE, value)
        case Quantity.BATTERY_W if value < 0:
            return Command(Mode.DISCHARGE, -value)
        case Quantity.BATTERY_W:
            return Command(Mode.HOLD)
        case Quantity.EV_CURRENT_A if value > 0:
            return Command(Mode.EV_CURRENT, value)
        case Quantity.EXPORT_LIMIT_W:
            return Command(Mode.EXPORT_LIMIT, value)
        case Quantity.HYDRO_LEVEL_M:
            return Command(Mode.LEVEL, value)
        case Quantity.IMMERSION_ON if value > 0:
            return Command(Mode.ON)
    return Command(Mode.OFF)


def _windows_problems(
    kind: DeviceKind, windows: tuple[Window, ...], slots: int, path: str
) -> list[Problem]:
    found: list[Problem] = []
    previous_end = 0
    for index, window in enumerate(windows):
        where = join_path(path, index)
        if window.start >= slots:
            found.append(Problem(join_path(where, "start"), f"must be < slots ({slots})"))
        if window.end > slots:
            found.append(Problem(join_path(where, "end"), f"must be <= slots ({slots})"))
        if window.end <= window.start:
            found.append(Problem(join_path(where, "end"), f"must be > start ({window.start})"))
        if index and window.start < previous_end:
            found.append(
                Problem(
                    join_path(where, "start"),
                    f"overlaps or precedes the previous window (which ends at {previous_end})",
                )
            )
        previous_end = max(previous_end, window.end)
        found.extend(_window_mode_problems(kind, window, where))
    return found


def _window_mode_problems(kind: DeviceKind, window: Window, path: str) -> list[Problem]:
    allowed = MODES_BY_KIND[kind]
    if window.mode not in allowed:
        names = ", ".join(sorted(allowed)) or "none: it cannot be commanded"
        message = f"{window.mode.value} is not valid for a {kind.value} device (allowed: {names})"
        return [Problem(join_path(path, "mode"), message)]
    rule = VALUE_RULES.get(window.mode)
    value_path = join_path(path, "value")
    if rule is None:
        if window.value is None:
            return []
        return [Problem(value_path, f"mode {window.mode.value} takes no value")]
    if window.value is None:
        return [Problem(value_path, f"mode {window.mode.value} needs a value in {rule.unit}")]
    broken = rule.problem(window.value)
    return [] if broken is None else [Problem(value_path, broken)]


def _setpoint_problems(
    kind: DeviceKind, setpoints: Setpoints, slots: int, path: str
) -> list[Problem]:
    expected = QUANTITY_BY_KIND.get(kind)
    if setpoints.quantity is not expected:
        allowed = "none" if expected is None else expected.value
        message = (
            f"{setpoints.quantity.value} is not valid for a {kind.value} device "
            f"(allowed: {allowed})"
        )
        return [Problem(join_path(path, "quantity"), message)]
    found = _length_problems(setpoints.values, slots, join_path(path, "values"))
    rule = SETPOINT_RULES[setpoints.quantity]
    for index, value in enumerate(setpoints.values):
        broken = None if value is None else rule.problem(value)
        if broken is not None:
            found.append(Problem(join_path(path, "values", index), broken))
    return found


def _length_problems(values: tuple[object, ...], slots: int, path: str) -> list[Problem]:
    if len(values) == slots:
        return []
    return [Problem(path, f"has {len(values)} values, needs one per slot ({slots})")]


class Expected(Record):
    """Trajectories the plan forecasts, one value per slot (null: no forecast)."""

    soc_pct: tuple[Percent | None, ...] | None = Field(default=None, max_length=MAX_SLOTS)
    """State of charge at the END of each slot, % (of the node's batteries together)."""
    grid_w: tuple[PowerW | None, ...] | None = Field(default=None, max_length=MAX_SLOTS)
    """Mean grid power over each slot, W (> 0 imports)."""
    pv_w: tuple[NonNegPowerW | None, ...] | None = Field(default=None, max_length=MAX_SLOTS)
    load_w: tuple[NonNegPowerW | None, ...] | None = Field(default=None, max_length=MAX_SLOTS)

    def problems(self, slots: int, path: str) -> list[Problem]:
        found: list[Problem] = []
        for name in type(self).model_fields:
            values = getattr(self, name)
            if values is not None:
                found.extend(_length_problems(values, slots, join_path(path, name)))
        return found


class Tolerance(Record):
    """How far reality may stray from `expected` before the node reports a deviation."""

    soc_pct: Percent | None = None
    grid_w: NonNegPowerW | None = None
    pv_w: NonNegPowerW | None = None
    load_w: NonNegPowerW | None = None


class Plan(Document):
    """Written by the aggregator to the named shadow `plan`, `desired.plan`."""

    KIND: ClassVar[str] = "plan"
    SCHEMA: ClassVar[str] = "fractal.plan.v1"
    SHADOW_PLACE: ClassVar[tuple[str, str] | None] = ("desired", "plan")
    MAX_BYTES: ClassVar[int | None] = PLAN_BUDGET

    schema_: Literal["fractal.plan.v1"] = Field(default="fractal.plan.v1", alias="schema")
    id: DocumentId
    node: NodeId
    issued: UtcDatetime
    start: UtcDatetime
    step: Step
    """Slot length, seconds."""
    slots: int = Field(ge=1, le=MAX_SLOTS)
    expiry: UtcDatetime
    """After this the node falls back to its default plan."""
    source: PlanSource
    event: DocumentId | None = None
    """The flexibility event this plan answers, if any."""
    devices: dict[DeviceId, DevicePlan] = Field(max_length=32)
    expected: Expected | None = None
    tolerance: Tolerance | None = None

    @property
    def end(self) -> datetime:
        """End of the last slot (exclusive)."""
        return self.start + timedelta(seconds=self.step * self.slots)

    def slot_at(self, when: datetime) -> int | None:
        """The slot `when` (timezone-aware) falls in, or None before the start, after the end
        or from the expiry on."""
        if when < self.start or when >= self.end or when >= self.expiry:
            return None
        return int((when - self.start).total_seconds()) // self.step

    def slot_start(self, slot: int) -> datetime:
        return self.start + timedelta(seconds=self.step * slot)

    def semantic_problems(self) -> list[Problem]:
        found = self._time_problems()
        for device_id, device_plan in self.devices.items():
            found.extend(device_plan.problems(self.slots, join_path("devices", device_id)))
        if self.expected is not None:
            found.extend(self.expected.problems(self.slots, "expected"))
        return found

    def _time_problems(self) -> list[Problem]:
        found: list[Problem] = []
        if self.step * self.slots > MAX_HORIZON.total_seconds():
            found.append(Problem("slots", "slots x step must not exceed 48 hours"))
        if self.expiry <= self.start:
            found.append(Problem("expiry", "must be after start"))
        if self.expiry > self.issued + MAX_HORIZON:
            found.append(Problem("expiry", "must be at most 48 hours after issued"))
        return found
