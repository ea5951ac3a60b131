"""Turning the raw integers of Metering (0x0702) and Electrical Measurement (0x0B04) into W,
Wh, V and A with each cluster's own multiplier and divisor.

A clamp meter reports `instantaneous_demand = 1234` with `multiplier 1, divisor 1000` and
`unit_of_measure 0` (kW): that is 1.234 kW, 1234 W. A smart plug reports
`active_power = 2345` with `ac_power_multiplier 1, ac_power_divisor 10`: 234.5 W. Getting the
divisor wrong by 1000 turns a kettle into a power station, so a divisor of 0 is an error, never
a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Metering unit_of_measure: kW / kWh, in binary (0x00) or BCD (0x80) formatting. Others
# (m³, ft³, BTU, ...) are gas, water or heat meters: no electric power to read.
KILOWATT_UNITS = frozenset({0x00, 0x80})


class ScalingError(ValueError):
    """A cluster's scaling attributes cannot turn its readings into units."""


@dataclass(frozen=True)
class Scale:
    """value = raw * multiplier / divisor (x factor for the unit)."""

    multiplier: int = 1
    divisor: int = 1
    factor: float = 1.0  # e.g. 1000 when the cluster's unit is kW and ours is W

    def apply(self, raw: float) -> float:
        return raw * self.multiplier / self.divisor * self.factor


def scale_of(multiplier: Any, divisor: Any, what: str, factor: float = 1.0) -> Scale:
    """A scale from attribute values as read (None: the device does not have it, so 1)."""
    mult = 1 if multiplier is None else int(multiplier)
    div = 1 if divisor is None else int(divisor)
    if div == 0:
        raise ScalingError(f"{what}: the device reports a divisor of 0")
    if mult == 0:
        raise ScalingError(f"{what}: the device reports a multiplier of 0")
    return Scale(mult, div, factor)


# Attribute names as zigpy knows them.
METERING_SCALING = ("multiplier", "divisor", "unit_of_measure")
METERING_VALUES = ("instantaneous_demand", "current_summ_delivered", "current_summ_received")
ELECTRICAL_SCALING = (
    "ac_power_multiplier",
    "ac_power_divisor",
    "ac_voltage_multiplier",
    "ac_voltage_divisor",
    "ac_current_multiplier",
    "ac_current_divisor",
)
ELECTRICAL_VALUES = ("active_power", "rms_voltage", "rms_current")


@dataclass(frozen=True)
class MeteringScales:
    """Metering: demand in kW and summations in kWh, both with one multiplier/divisor."""

    power: Scale  # to W
    energy: Scale  # to Wh

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, Any]) -> MeteringScales:
        unit = attrs.get("unit_of_measure")
        unit = 0 if unit is None else int(unit)
        if unit not in KILOWATT_UNITS:
            raise ScalingError(
                f"Metering: unit_of_measure 0x{unit:02x} is not kW/kWh (not an electricity meter)"
            )
        mult, div = attrs.get("multiplier"), attrs.get("divisor")
        return cls(
            power=scale_of(mult, div, "Metering", factor=1000.0),
            energy=scale_of(mult, div, "Metering", factor=1000.0),
        )


@dataclass(frozen=True)
class ElectricalScales:
    """Electrical Measurement: W, V and A, each with its own multiplier/divisor pair."""

    power: Scale
    voltage: Scale
    current: Scale

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, Any]) -> ElectricalScales:
        return cls(
            power=scale_of(
                attrs.get("ac_power_multiplier"),
                attrs.get("ac_power_divisor"),
                "Electrical Measurement power",
            ),
            voltage=scale_of(
                attrs.get("ac_voltage_multiplier"),
                attrs.get("ac_voltage_divisor"),
                "Electrical Measurement voltage",
            ),
            current=scale_of(
                attrs.get("ac_current_multiplier"),
                attrs.get("ac_current_divisor"),
                "Electrical Measurement current",
            ),
        )


@dataclass(frozen=True)
class ZigbeeReading:
    """One Zigbee meter now, in W, Wh, V, A (None: not known, or not measured by it).

    power_w > 0 is power delivered to the premises (import, or a plug's load), as DESIGN §3.
    """

    power_w: float | None = None
    import_wh: float | None = None
    export_wh: float | None = None
    voltage_v: float | None = None
    current_a: float | None = None


def reading_of(
    metering: Mapping[str, Any],
    metering_scales: MeteringScales | None,
    electrical: Mapping[str, Any],
    electrical_scales: ElectricalScales | None,
) -> ZigbeeReading:
    """The reading from the latest raw values; the Metering cluster's demand wins over the
    Electrical Measurement's active power when a device has both (it is the meter's own)."""

    def scaled(raw: Any, scale: Scale | None) -> float | None:
        return None if raw is None or scale is None else scale.apply(raw)

    m, e = metering_scales, electrical_scales
    demand = scaled(metering.get("instantaneous_demand"), m.power if m else None)
    active = scaled(electrical.get("active_power"), e.power if e else None)
    return ZigbeeReading(
        power_w=demand if demand is not None else active,
        import_wh=scaled(metering.get("current_summ_delivered"), m.energy if m else None),
        export_wh=scaled(metering.get("current_summ_received"), m.energy if m else None),
        voltage_v=scaled(electrical.get("rms_voltage"), e.voltage if e else None),
        current_a=scaled(electrical.get("rms_current"), e.current if e else None),
    )
