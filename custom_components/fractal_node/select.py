"""Selects: the householder's override per controllable device (override_select.py), and the
modes of Modbus devices: writable registers with named options (e.g. a battery's mode)."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import Role
from .coordinator import FractalNodeConfigEntry
from .device_entity import ModbusDeviceEntity, map_registers, writable_range
from .device_runtime import NodeDevice
from .fractal.devices.regmap import Register
from .fractal.executor.decide import CONVERTERS
from .modbus import KIND_OF_ROLE
from .override_select import OverrideSelect

# Writes go to the device one at a time through its gateway anyway.
PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FractalNodeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    executor = entry.runtime_data.executor
    assert executor is not None  # set-up starts it before the platforms
    for subentry_id, node_device in entry.runtime_data.devices.items():
        selects: list[SelectEntity] = [
            DeviceSelect(node_device, register)
            for register in map_registers(node_device)
            if register.writable is not None and register.options is not None
        ]
        kind = KIND_OF_ROLE[Role(node_device.role)]
        if kind in CONVERTERS:
            selects.append(OverrideSelect(executor, node_device, subentry_id, kind))
        async_add_entities(selects, config_subentry_id=subentry_id)


class DeviceSelect(ModbusDeviceEntity, SelectEntity):
    """The map's named options, only those the installer's envelope allows."""

    def __init__(self, node_device: NodeDevice, register: Register) -> None:
        super().__init__(node_device.coordinators[register.group], register.name)
        assert register.options is not None
        bounds = writable_range(node_device, register)
        self._attr_options = [
            label for code, label in register.options.items() if bounds.min <= code <= bounds.max
        ]

    @property
    def current_option(self) -> str | None:
        value = self.reading.value if self.reading else None
        return value if isinstance(value, str) and value in self.options else None

    async def async_select_option(self, option: str) -> None:
        await self._async_write(option)
