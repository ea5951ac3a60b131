"""Why a device could not be read or written, in words an installer can act on."""

from __future__ import annotations

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge (busy with a long operation)",
    6: "device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


class ModbusDeviceError(Exception):
    """Base of every device and gateway failure."""


class GatewayUnavailable(ModbusDeviceError):
    """The gateway cannot be reached (connection refused, dropped, or backing off)."""


class DeviceTimeout(ModbusDeviceError):
    """The device did not answer in time."""


class DeviceException(ModbusDeviceError):
    """The device answered with a Modbus exception code."""

    def __init__(self, code: int, request: str) -> None:
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"{request}: exception code {code} ({name})")
        self.code = code


class ProtocolError(ModbusDeviceError):
    """The answer was malformed (wrong length, wrong function)."""


class DeviceUnavailable(ModbusDeviceError):
    """The device is marked unavailable; the message says why and since when."""


class WriteRefused(ModbusDeviceError, ValueError):
    """A write was refused before reaching the wire (not writable, not a valid value)."""


class WriteNotVerified(ModbusDeviceError):
    """The value read back after a write differs from the value written."""
