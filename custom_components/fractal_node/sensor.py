"""Sensors of a node: its link and plan status, last telemetry time and power flows.

The power-flow sensors are unavailable until the node has devices that measure them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfPower
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import FractalNodeConfigEntry
from .entity import FractalNodeEntity
from .fractal.node import LinkStatus, NodePlanStatus, NodeState

# The coordinator pushes updates; entities never poll.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class FractalNodeSensorDescription(SensorEntityDescription):
    value_fn: Callable[[NodeState], str | float | datetime | None]
    available_fn: Callable[[NodeState], bool] = lambda _: True


def _power(key: str, value_fn: Callable[[NodeState], float | None]) -> FractalNodeSensorDescription:
    return FractalNodeSensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=value_fn,
        available_fn=lambda state: value_fn(state) is not None,
    )


SENSORS: tuple[FractalNodeSensorDescription, ...] = (
    FractalNodeSensorDescription(
        key="link_status",
        translation_key="link_status",
        device_class=SensorDeviceClass.ENUM,
        options=[status.value for status in LinkStatus],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state: state.link_status.value,
    ),
    FractalNodeSensorDescription(
        key="plan_status",
        translation_key="plan_status",
        device_class=SensorDeviceClass.ENUM,
        options=[status.value for status in NodePlanStatus],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state: state.plan_status.value,
    ),
    FractalNodeSensorDescription(
        key="last_telemetry",
        translation_key="last_telemetry",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state: state.last_telemetry,
    ),
    _power("grid_power", lambda state: state.power.grid_w),
    _power("pv_power", lambda state: state.power.pv_w),
    _power("battery_power", lambda state: state.power.battery_w),
    _power("load_power", lambda state: state.power.load_w),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FractalNodeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    coordinator = entry.runtime_data.coordinator
    async_add_entities(FractalNodeSensor(coordinator, description) for description in SENSORS)


class FractalNodeSensor(FractalNodeEntity, SensorEntity):
    entity_description: FractalNodeSensorDescription

    @property
    def available(self) -> bool:
        return super().available and self.entity_description.available_fn(self.coordinator.data)

    @property
    def native_value(self) -> str | float | datetime | None:
        return self.entity_description.value_fn(self.coordinator.data)
