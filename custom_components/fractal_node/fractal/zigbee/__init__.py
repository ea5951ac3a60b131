"""Zigbee clamp meters and smart plugs: Metering (0x0702) and Electrical Measurement (0x0B04)
read with zigpy, through ZHA's radio or our own EZSP stick (bellows)."""

from .meter import (
    ELECTRICAL_MEASUREMENT,
    METER_CLUSTERS,
    METERING,
    MeterCandidate,
    NotAMeter,
    ZigbeeMeter,
    ZigbeeUnavailable,
    meter_candidates,
)
from .scaling import ScalingError, ZigbeeReading

__all__ = [
    "ELECTRICAL_MEASUREMENT",
    "METERING",
    "METER_CLUSTERS",
    "MeterCandidate",
    "NotAMeter",
    "ScalingError",
    "ZigbeeMeter",
    "ZigbeeReading",
    "ZigbeeUnavailable",
    "meter_candidates",
]
