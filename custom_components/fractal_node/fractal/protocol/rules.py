"""Which modes, set-point quantities and envelope limits apply to which kind of device.

These tables are the contract: the aggregator must only send what a kind accepts, and a
node rejects plans that do not follow them. A device's descriptor narrows them further
with its `capabilities`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from .types import DeviceKind, Mode, Quantity

_K = DeviceKind
_M = Mode

MODES_BY_KIND: Final = MappingProxyType(
    {
        _K.BATTERY: frozenset({_M.BALANCE, _M.CHARGE, _M.DISCHARGE, _M.HOLD, _M.OFF}),
        _K.PV_INVERTER: frozenset({_M.ON, _M.OFF, _M.EXPORT_LIMIT}),
        _K.EV_CHARGER: frozenset({_M.BALANCE, _M.ON, _M.OFF, _M.EV_CURRENT}),
        _K.IMMERSION: frozenset({_M.BALANCE, _M.ON, _M.OFF}),
        _K.HYDRO: frozenset({_M.ON, _M.OFF, _M.LEVEL}),
        # The site's connection: the node meets the limit with whatever it controls.
        _K.GRID_METER: frozenset({_M.EXPORT_LIMIT}),
        # Read-only: a PV generation meter and sub-meters are measured, never commanded.
        _K.PV: frozenset[Mode](),
        _K.SUB_METER: frozenset[Mode](),
    }
)
"""Modes each device kind can be given in a plan window."""

QUANTITY_BY_KIND: Final = MappingProxyType(
    {
        _K.BATTERY: Quantity.BATTERY_W,
        _K.PV_INVERTER: Quantity.EXPORT_LIMIT_W,
        _K.EV_CHARGER: Quantity.EV_CURRENT_A,
        _K.IMMERSION: Quantity.IMMERSION_ON,
        _K.HYDRO: Quantity.HYDRO_LEVEL_M,
        _K.GRID_METER: Quantity.EXPORT_LIMIT_W,
    }
)
"""The one set-point quantity each controllable kind accepts."""


@dataclass(frozen=True)
class ValueRule:
    """What a window's `value` must be for a mode."""

    unit: str
    integer: bool
    minimum: float | None
    exclusive: bool = False
    maximum: float | None = None

    def problem(self, value: float) -> str | None:
        """Why `value` breaks the rule, or None."""
        if self.integer and not float(value).is_integer():
            return f"must be a whole number of {self.unit}"
        if self.maximum is not None and value > self.maximum:
            return f"must be <= {self.maximum:g} {self.unit}"
        if self.minimum is None:
            return None
        if self.exclusive and value <= self.minimum:
            return f"must be > {self.minimum:g} {self.unit}"
        if value < self.minimum:
            return f"must be >= {self.minimum:g} {self.unit}"
        return None


VALUE_RULES: Final = MappingProxyType(
    {
        _M.CHARGE: ValueRule("W", integer=True, minimum=0, exclusive=True),
        _M.DISCHARGE: ValueRule("W", integer=True, minimum=0, exclusive=True),
        _M.EXPORT_LIMIT: ValueRule("W", integer=True, minimum=0),
        _M.EV_CURRENT: ValueRule("A", integer=False, minimum=0, exclusive=True),
        _M.LEVEL: ValueRule("m", integer=False, minimum=None),
    }
)
"""Modes that need a value; every other mode must have none."""

SETPOINT_RULES: Final = MappingProxyType(
    {
        Quantity.BATTERY_W: ValueRule("W", integer=True, minimum=None),
        Quantity.EV_CURRENT_A: ValueRule("A", integer=False, minimum=0),
        Quantity.EXPORT_LIMIT_W: ValueRule("W", integer=True, minimum=0),
        Quantity.HYDRO_LEVEL_M: ValueRule("m", integer=False, minimum=None),
        Quantity.IMMERSION_ON: ValueRule("(0 off, 1 on)", integer=True, minimum=0, maximum=1),
    }
)
"""What each per-slot set-point value must be (null always means "device default")."""

ENVELOPE_FIELDS_BY_KIND: Final = MappingProxyType(
    {
        _K.BATTERY: frozenset(
            {"max_charge_w", "max_discharge_w", "soc_min_pct", "soc_max_pct", "capacity_wh"}
        ),
        _K.EV_CHARGER: frozenset({"ev_current_min_a", "ev_current_max_a", "power_max_w"}),
        _K.HYDRO: frozenset(
            {"power_max_w", "level_min_m", "level_max_m", "level_rate_max_m_per_h"}
        ),
        _K.PV_INVERTER: frozenset({"power_max_w"}),
        _K.IMMERSION: frozenset({"power_max_w"}),
        _K.PV: frozenset({"power_max_w"}),
        _K.GRID_METER: frozenset({"power_max_w"}),
        _K.SUB_METER: frozenset({"power_max_w"}),
    }
)
"""Envelope limits that mean something for each device kind."""
