"""What any smart meter reports, in the protocol's units (W, Wh, m³, pence), whatever its kind.

A Glow CAD over MQTT, the Glowmarkt cloud and Zigbee meters all turn their messages into
`MeterReading`s; the glitch filter (`glitches.MeterFilter`) keeps the latest good value of each
quantity in a `MeterState`. A reading carries only what its message had: a Glow electricity
message has no gas fields, a STATE message only the link diagnostics (None = not in it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Quantity(StrEnum):
    """The quantities a meter reports; also the keys of its entities."""

    POWER = "power"  # W, > 0 import (DESIGN §3)
    IMPORT_ENERGY = "import_energy"  # Wh, cumulative
    EXPORT_ENERGY = "export_energy"  # Wh, cumulative
    GAS_ENERGY = "gas_energy"  # Wh, cumulative
    GAS_VOLUME = "gas_volume"  # m³, cumulative
    UNIT_RATE = "unit_rate"  # pence/kWh (electricity import)
    STANDING_CHARGE = "standing_charge"  # pence/day (electricity)
    GAS_UNIT_RATE = "gas_unit_rate"  # pence/kWh
    GAS_STANDING_CHARGE = "gas_standing_charge"  # pence/day
    SIGNAL_STRENGTH = "signal_strength"  # dBm of the meter's HAN link (RSSI)
    LINK_QUALITY = "link_quality"  # LQI 0..255 of the meter's HAN link
    LINK_STATUS = "link_status"  # e.g. "joined"


# Counters that only ever grow: a reading that goes down is a glitch, not a meter reset.
CUMULATIVE: frozenset[Quantity] = frozenset(
    {
        Quantity.IMPORT_ENERGY,
        Quantity.EXPORT_ENERGY,
        Quantity.GAS_ENERGY,
        Quantity.GAS_VOLUME,
    }
)

type Value = float | str


@dataclass(frozen=True, kw_only=True)
class MeterReading:
    """One message of a meter: the time the meter stamped it and the quantities it carries."""

    timestamp: datetime  # timezone-aware, as the meter (or CAD) stamped it
    power_w: float | None = None
    import_energy_wh: float | None = None
    export_energy_wh: float | None = None
    gas_energy_wh: float | None = None
    gas_volume_m3: float | None = None
    unit_rate_p_per_kwh: float | None = None
    standing_charge_p_per_day: float | None = None
    gas_unit_rate_p_per_kwh: float | None = None
    gas_standing_charge_p_per_day: float | None = None
    signal_strength_dbm: float | None = None
    link_quality: float | None = None
    link_status: str | None = None

    def __post_init__(self) -> None:
        if self.timestamp.tzinfo is None:
            raise ValueError("a meter reading's timestamp must be timezone-aware")

    def values(self) -> dict[Quantity, Value]:
        """The quantities this message carries (those not None)."""
        return {
            quantity: value
            for quantity, field_name in _FIELDS.items()
            if (value := getattr(self, field_name)) is not None
        }


_FIELDS: dict[Quantity, str] = {
    Quantity.POWER: "power_w",
    Quantity.IMPORT_ENERGY: "import_energy_wh",
    Quantity.EXPORT_ENERGY: "export_energy_wh",
    Quantity.GAS_ENERGY: "gas_energy_wh",
    Quantity.GAS_VOLUME: "gas_volume_m3",
    Quantity.UNIT_RATE: "unit_rate_p_per_kwh",
    Quantity.STANDING_CHARGE: "standing_charge_p_per_day",
    Quantity.GAS_UNIT_RATE: "gas_unit_rate_p_per_kwh",
    Quantity.GAS_STANDING_CHARGE: "gas_standing_charge_p_per_day",
    Quantity.SIGNAL_STRENGTH: "signal_strength_dbm",
    Quantity.LINK_QUALITY: "link_quality",
    Quantity.LINK_STATUS: "link_status",
}


@dataclass(frozen=True)
class MeterState:
    """The latest good value of each quantity and when the meter stamped it."""

    values: dict[Quantity, Value]
    stamped: dict[Quantity, datetime]
    silent: bool  # no message for the silence period: every value is stale

    def get(self, quantity: Quantity) -> Value | None:
        return None if self.silent else self.values.get(quantity)

    def number(self, quantity: Quantity) -> float | None:
        value = self.get(quantity)
        return float(value) if isinstance(value, int | float) else None
