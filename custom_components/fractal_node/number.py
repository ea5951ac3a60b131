"""Set-points of Modbus devices: writable numeric registers, bounded by the safety envelope."""

from __future__ import annotations

from homeassistant.components.number import NumberEntity, NumberMode
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import FractalNodeConfigEntry
from .device_entity import ModbusDeviceEntity, map_registers, sunspec_setpoints, writable_range
from .device_runtime import NodeDevice
from .fractal.devices import Range
from .fractal.devices.codec import DataType
from .fractal.devices.regmap import Register

# Writes go to the device one at a time through its gateway anyway.
PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FractalNodeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    for subentry_id, node_device in entry.runtime_data.devices.items():
        numbers: list[ModbusDeviceEntity] = [
            DeviceNumber(node_device, register)
            for register in map_registers(node_device)
            if register.writable is not None
            and register.options is None
            and register.type is not DataType.BOOL
        ]
        numbers.extend(
            SunSpecNumber(node_device, name, bounds)
            for name, bounds in sunspec_setpoints(node_device).items()
        )
        async_add_entities(numbers, config_subentry_id=subentry_id)


class DeviceNumber(ModbusDeviceEntity, NumberEntity):
    """A set-point whose range is the map's, narrowed by the installer's envelope."""

    _attr_mode = NumberMode.BOX

    def __init__(self, node_device: NodeDevice, register: Register) -> None:
        super().__init__(node_device.coordinators[register.group], register.name)
        bounds = writable_range(node_device, register)
        self._attr_native_min_value = bounds.min
        self._attr_native_max_value = bounds.max
        self._attr_native_step = (
            abs(register.scale) if register.type is not DataType.FLOAT32 else 0.01
        )
        self._attr_native_unit_of_measurement = register.unit

    @property
    def native_value(self) -> float | None:
        value = self.reading.value if self.reading else None
        return float(value) if isinstance(value, int | float) else None

    async def async_set_native_value(self, value: float) -> None:
        await self._async_write(value)


class SunSpecNumber(ModbusDeviceEntity, NumberEntity):
    """A SunSpec read-write point, e.g. a battery's maximum charge power, within the envelope."""

    _attr_mode = NumberMode.BOX

    def __init__(self, node_device: NodeDevice, name: str, bounds: Range) -> None:
        super().__init__(node_device.coordinators["fast"], name)
        self._attr_native_min_value = bounds.min
        self._attr_native_max_value = bounds.max
        reading = self.reading
        self._attr_native_unit_of_measurement = reading.unit if reading else None

    @property
    def native_value(self) -> float | None:
        value = self.reading.value if self.reading else None
        return float(value) if isinstance(value, int | float) else None

    async def async_set_native_value(self, value: float) -> None:
        await self._async_write(value)
