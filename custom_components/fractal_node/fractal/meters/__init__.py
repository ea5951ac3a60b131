"""Smart meters (Glow CAD, Glowmarkt cloud, Zigbee): one reading model and one glitch filter."""

from .glitches import SENTINEL_POWER_W, Glitch, MeterFilter, Rejection
from .reading import CUMULATIVE, MeterReading, MeterState, Quantity, Value

__all__ = [
    "CUMULATIVE",
    "SENTINEL_POWER_W",
    "Glitch",
    "MeterFilter",
    "MeterReading",
    "MeterState",
    "Quantity",
    "Rejection",
    "Value",
]
