"""Set-points as writes to the generic register maps' names (docs/register-maps.md).

Pure: the caller writes each pair with `Device.write`, which clamps to the map's range and the
installer's envelope again and verifies by reading back. The order matters: the amount first,
then what switches it on.
"""

from __future__ import annotations

from ..protocol import Quantity
from .model import Setpoint

Write = tuple[str, float | str]


def register_writes(setpoint: Setpoint) -> list[Write]:
    """The (register, value) writes that carry out `setpoint`; empty when nothing is written."""
    value = setpoint.value
    if value is None:
        return []
    match setpoint.quantity:
        case Quantity.BATTERY_W:
            return [("power_setpoint", value), ("mode", _battery_mode(value))]
        case Quantity.EV_CURRENT_A if value > 0:
            return [("charge_current_setpoint", value), ("charging_enabled", 1)]
        case Quantity.EV_CURRENT_A:
            # 0 A is below every charger's range: switch charging off instead.
            return [("charging_enabled", 0)]
        case Quantity.HYDRO_LEVEL_M:
            return [("river_level_setpoint", value)]
        case Quantity.IMMERSION_ON:
            return [("heater_on", 1 if value > 0 else 0)]
    # PV export limits: SunSpec inverters (devices.sunspec_controls), no generic map.
    return []


def _battery_mode(value: float) -> str:
    if value > 0:
        return "charge"
    return "discharge" if value < 0 else "hold"
