"""Commands for SunSpec inverters: the plan's PV export limit as an output power limit.

SunSpec has no "export limit" point, only a limit on the inverter's own output, as a percentage
of its maximum power: `WMaxLimPct` with its enable switch, in model 704 (DER AC controls,
IEEE 1547) or, on older inverters, model 123 (immediate controls, `WMaxLim_Ena`). The export
limit becomes an output limit: the export limit plus what the house uses now
(`output_limit_w`), since export = output - consumption. The executor writes it again as the
consumption moves; with the consumption unknown it is the export limit itself, which always
holds (at the price of PV the house could have used). No limit (None) switches it off.

The percentage is of the inverter's maximum power read from the device (model 702 `WMax`, else
`WMaxRtg`; model 121 `WMax`, else model 120 `WRtg`). The points are bounded by their
definition (0-100 %, disabled/enabled), so they need no range from the installer; the watts
were already limited by the site's envelope when the executor chose them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .device import WriteResult
from .errors import WriteRefused
from .regmap import Range
from .sunspec import SunSpecDevice


@dataclass(frozen=True)
class PowerLimitPoints:
    """Where one SunSpec model keeps the output power limit and the maximum power."""

    model_id: int
    percent: str
    enable: str
    ratings: tuple[str, ...]
    """Reading names of the maximum power, the first one the device implements wins."""


DER_CONTROLS = PowerLimitPoints(
    model_id=704,
    percent="derctlac_wmaxlimpct",
    enable="derctlac_wmaxlimpctena",
    ratings=("dercapacity_wmax", "dercapacity_wmaxrtg"),
)
IMMEDIATE_CONTROLS = PowerLimitPoints(
    model_id=123,
    percent="controls_wmaxlimpct",
    enable="controls_wmaxlim_ena",
    ratings=("settings_wmax", "nameplate_wrtg"),
)
PERCENT = Range(min=0, max=100)
SWITCH = Range(min=0, max=1)
CONTROL_RANGES = {
    **{points.percent: PERCENT for points in (DER_CONTROLS, IMMEDIATE_CONTROLS)},
    **{points.enable: SWITCH for points in (DER_CONTROLS, IMMEDIATE_CONTROLS)},
}
"""The limit points' own bounds: a percentage and a switch."""


def power_limit_points(device: SunSpecDevice) -> PowerLimitPoints | None:
    """The device's power-limit control (704 preferred), or None if it has neither model."""
    present = {model.model_id for model in device.models}
    return next(
        (points for points in (DER_CONTROLS, IMMEDIATE_CONTROLS) if points.model_id in present),
        None,
    )


OUTPUT_STEP_W = 100
"""Output limits are rounded down to this, so the consumption's flicker is not written."""


def output_limit_w(export_limit_w: float | None, consumption_w: float | None) -> float | None:
    """The inverter output that keeps the export within `export_limit_w` while the house uses
    `consumption_w` (None or negative: counted as nothing, the safe side)."""
    if export_limit_w is None:
        return None
    headroom = max(0.0, consumption_w or 0.0)
    return float((export_limit_w + headroom) // OUTPUT_STEP_W * OUTPUT_STEP_W)


async def write_export_limit(device: SunSpecDevice, limit_w: float | None) -> list[WriteResult]:
    """Limit the inverter's output to `limit_w` watts (None: no limit; see `output_limit_w`),
    verified by reading back. Raises WriteRefused when the device has no power-limit control
    or no known maximum power (and ModbusDeviceError subclasses when the device fails)."""
    points = power_limit_points(device)
    if points is None:
        raise WriteRefused(f"{device}: no SunSpec power-limit control (model 704 or 123)")
    if limit_w is None:
        return [await _write(device, points.enable, 0)]
    rating = await _max_power_w(device, points)
    percent = max(0.0, float(limit_w) / rating * 100)  # above 100 %: clamped when written
    return [await _write(device, points.percent, percent), await _write(device, points.enable, 1)]


async def _max_power_w(device: SunSpecDevice, points: PowerLimitPoints) -> float:
    readings = await device.poll()
    for name in points.ratings:
        reading = readings.get(name)
        value = reading.value if reading is not None else None
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    names = ", ".join(points.ratings)
    raise WriteRefused(f"{device}: no maximum power to take a percentage of ({names})")


async def _write(device: SunSpecDevice, name: str, value: float) -> WriteResult:
    """Write within the point's own bounds unless the installer gave narrower ones."""
    if name not in device.envelope:
        device.envelope[name] = CONTROL_RANGES[name]
    return await device.write(name, value)
