"""What the executor reads, what it decides and what it remembers between ticks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ..protocol import Command, Mode, Plan, Quantity

SAFE_DEFAULT = "safe default"
"""The source named when no plan has a command for a device (or a reading is unusable)."""


def finite(value: object) -> float | None:
    """A usable number, or None for garbage (None, NaN, infinity, text, booleans)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Readings:
    """Live readings. `grid_w` > 0 imports; per-device metrics are named as in telemetry:
    batteries `soc_pct`, hydro `level_m`, EV chargers `current_a` (and `voltage_v`)."""

    grid_w: object = None
    soc_pct: object = None
    """The node's batteries together (compared with the plan's expected SoC)."""
    devices: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    @property
    def grid(self) -> float | None:
        return finite(self.grid_w)

    @property
    def soc(self) -> float | None:
        return _percent(finite(self.soc_pct))

    def metric(self, device_id: str, name: str) -> float | None:
        value = finite(self.devices.get(device_id, {}).get(name))
        return _percent(value) if name == "soc_pct" else value


def _percent(value: float | None) -> float | None:
    return value if value is not None and 0 <= value <= 100 else None


@dataclass(frozen=True)
class Sources:
    """Plans by priority (after the safety envelope): householder override, DSO event,
    aggregator plan, local default plan. Each is active only inside its slots and expiry."""

    override: Plan | None = None
    dso: Plan | None = None
    aggregator: Plan | None = None
    default: Plan | None = None

    def by_priority(self) -> tuple[Plan | None, ...]:
        return (self.override, self.dso, self.aggregator, self.default)


@dataclass(frozen=True)
class Chosen:
    """The command a device runs this tick, and where it came from."""

    command: Command | None
    """None: the device's own default (hydro keeps its level set-point)."""
    source: str
    plan_id: str | None = None
    slot: int | None = None
    step_s: int | None = None


@dataclass(frozen=True)
class Setpoint:
    """What to write to one device, with the reasons."""

    device: str
    quantity: Quantity
    value: float | None
    """None: write nothing, the device keeps what it has."""
    mode: Mode | None
    source: str
    plan_id: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class SlotEnergy:
    """EV energy delivered in one plan slot, as ampere-hours (for below-minimum slots)."""

    plan_id: str | None
    slot: int | None
    delivered_ah: float


@dataclass(frozen=True)
class ExecutorState:
    """What the executor remembers between ticks."""

    at: datetime | None = None
    setpoints: Mapping[str, float] = field(default_factory=dict)
    ev_energy: Mapping[str, SlotEnergy] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    setpoints: Mapping[str, Setpoint]
    state: ExecutorState
