"""Modbus devices as data: register maps, one client per gateway, merged reads, safe writes.

The Home Assistant integration is a thin shell over this package: it builds a `Gateway` per
endpoint, a `Device` per unit id with a `RegisterMap`, calls `poll(group)` on each group's
interval and `write(name, value)` for set-points, and shows `Device.availability`.
"""

from .detect import Detection, detect
from .device import Device, PolledDevice, Reading, WriteResult
from .errors import (
    DeviceException,
    DeviceTimeout,
    DeviceUnavailable,
    GatewayUnavailable,
    ModbusDeviceError,
    WriteNotVerified,
    WriteRefused,
)
from .gateway import Gateway, GatewayPool, SerialEndpoint, TcpEndpoint
from .health import Availability
from .regmap import (
    Range,
    RegisterMap,
    RegisterMapError,
    load_map,
    load_shipped_map,
    shipped_map_names,
)
from .sunspec import NotSunSpec, SunSpecDevice, discover

__all__ = [
    "Availability",
    "Detection",
    "Device",
    "DeviceException",
    "DeviceTimeout",
    "DeviceUnavailable",
    "Gateway",
    "GatewayPool",
    "GatewayUnavailable",
    "ModbusDeviceError",
    "NotSunSpec",
    "PolledDevice",
    "Range",
    "Reading",
    "RegisterMap",
    "RegisterMapError",
    "SerialEndpoint",
    "SunSpecDevice",
    "TcpEndpoint",
    "WriteNotVerified",
    "WriteRefused",
    "WriteResult",
    "detect",
    "discover",
    "load_map",
    "load_shipped_map",
    "shipped_map_names",
]
