"""Entities of a Modbus device: declared by the register map, one per register.

Names come from the register names of the map (devices are data: a custom map brings its own
registers, which no translation file can know). Each device sits under the node (via_device).
"""

from __future__ import annotations

from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_MODEL, CONF_NODE_ID, DOMAIN, MODEL_SUNSPEC
from .device_runtime import DeviceCoordinator, NodeDevice
from .fractal.devices import (
    Device,
    ModbusDeviceError,
    Range,
    Reading,
    SunSpecDevice,
    WriteResult,
)
from .fractal.devices.regmap import IDENTITY_GROUP, Register


class ModbusDeviceEntity(CoordinatorEntity[DeviceCoordinator]):
    _attr_has_entity_name = True

    def __init__(self, coordinator: DeviceCoordinator, key: str) -> None:
        super().__init__(coordinator)
        node_device = coordinator.node_device
        entry = coordinator.config_entry
        assert entry is not None
        subentry = node_device.subentry
        self.key = key
        self._attr_name = key.replace("_", " ").capitalize()
        self._attr_unique_id = f"{entry.data[CONF_NODE_ID]}_{subentry.subentry_id}_{key}"
        self._attr_device_info = device_info(node_device, entry.data[CONF_NODE_ID])

    @property
    def node_device(self) -> NodeDevice:
        return self.coordinator.node_device

    @property
    def reading(self) -> Reading | None:
        return (self.coordinator.data or {}).get(self.key)

    @property
    def available(self) -> bool:
        """Unavailable while the device is down or its value is garbage."""
        reading = self.reading
        return (
            super().available
            and self.node_device.available
            and reading is not None
            and reading.value is not None
        )

    async def _async_write(self, value: float | str | bool) -> WriteResult:
        """Write through the library: clamped to the envelope, verified by reading back."""
        device = self.node_device.device
        try:
            if isinstance(device, SunSpecDevice):  # its points are numbers only
                result = await device.write(self.key, float(value))
            else:
                assert isinstance(device, Device)
                result = await device.write(self.key, value)
        except ModbusDeviceError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="write_failed",
                translation_placeholders={"name": str(self.name), "reason": str(err)},
            ) from err
        await self.coordinator.async_refresh()  # show the verified value now, not after a cooldown
        return result


def device_info(node_device: NodeDevice, node_id: str) -> DeviceInfo:
    device, subentry = node_device.device, node_device.subentry
    manufacturer, model = "SunSpec", "SunSpec device"
    if isinstance(device, Device):
        manufacturer, model = device.regmap.manufacturer, device.regmap.model
    return DeviceInfo(
        identifiers={(DOMAIN, subentry.subentry_id)},
        name=subentry.title,
        manufacturer=manufacturer,
        model=model if subentry.data[CONF_MODEL] != MODEL_SUNSPEC else subentry.title,
        via_device=(DOMAIN, node_id),
    )


def map_registers(node_device: NodeDevice) -> list[Register]:
    """The polled registers of a map-based device (identity registers are read once only)."""
    if not isinstance(node_device.device, Device):
        return []
    return [r for r in node_device.device.regmap.registers if r.group != IDENTITY_GROUP]


def writable_range(node_device: NodeDevice, register: Register) -> Range:
    """The map's range narrowed by the installer's envelope (the library enforces it too)."""
    assert register.writable is not None
    assert isinstance(node_device.device, Device)
    envelope = node_device.device.envelope.get(register.name, register.writable)
    low = max(register.writable.min, envelope.min)
    high = min(register.writable.max, envelope.max)
    return Range(min=low, max=high) if low <= high else register.writable


def sunspec_setpoints(node_device: NodeDevice) -> dict[str, Range]:
    """SunSpec points the installer's envelope makes writable (SunSpec writes require one),
    among those the device reported at set-up."""
    device = node_device.device
    if not isinstance(device, SunSpecDevice):
        return {}
    readings = node_device.coordinators["fast"].data or {}
    return {name: bounds for name, bounds in device.envelope.items() if name in readings}
