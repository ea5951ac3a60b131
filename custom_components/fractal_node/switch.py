"""On/off controls of Modbus devices: writable coils (e.g. an EV charger's charging enabled)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import FractalNodeConfigEntry
from .device_entity import ModbusDeviceEntity, map_registers
from .fractal.devices.codec import DataType

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FractalNodeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    for subentry_id, node_device in entry.runtime_data.devices.items():
        async_add_entities(
            (
                DeviceSwitch(node_device.coordinators[register.group], register.name)
                for register in map_registers(node_device)
                if register.writable is not None and register.type is DataType.BOOL
            ),
            config_subentry_id=subentry_id,
        )


class DeviceSwitch(ModbusDeviceEntity, SwitchEntity):
    @property
    def is_on(self) -> bool | None:
        value = self.reading.value if self.reading else None
        return bool(value) if value is not None else None

    async def async_turn_on(self, **kwargs: Any) -> None:
        await self._async_write(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        await self._async_write(False)
