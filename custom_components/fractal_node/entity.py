"""The base of every Fractal Node entity: one device per node, names from translations."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import FractalNodeCoordinator
from .fractal import __version__


class FractalNodeEntity(CoordinatorEntity[FractalNodeCoordinator]):
    _attr_has_entity_name = True

    def __init__(self, coordinator: FractalNodeCoordinator, description: EntityDescription) -> None:
        super().__init__(coordinator)
        self.entity_description = description
        config = coordinator.runtime.config
        self._attr_unique_id = f"{config.node_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, config.node_id)},
            name=config.name,
            manufacturer="Fractal Node",
            model="Energy node",
            serial_number=config.node_id,
            sw_version=__version__,
        )
