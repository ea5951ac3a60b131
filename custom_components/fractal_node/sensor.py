"""Sensors of a node (link and plan status, last telemetry time, power flows) and of its
Modbus devices (one per polled register that is not a set-point).

The power-flow sensors are unavailable until the node has devices that measure them. Device
sensors take device class, unit and state class from the register map, so energy counters
(total_increasing, Wh) are accepted by the Energy dashboard.
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
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_NODE_ID, Role
from .coordinator import FractalNodeConfigEntry, FractalNodeCoordinator
from .device_entity import ModbusDeviceEntity, device_info, map_registers, sunspec_setpoints
from .device_runtime import DeviceCoordinator, NodeDevice
from .entity import FractalNodeEntity
from .executor_runtime import ExecutorCoordinator
from .fractal.devices import Reading
from .fractal.devices.regmap import Register
from .fractal.executor import Setpoint
from .fractal.executor.decide import CONVERTERS
from .fractal.node import LinkStatus, NodePlanStatus, NodeState
from .fractal.protocol import DeviceKind
from .fractal.protocol.rules import MODES_BY_KIND
from .meter_entities import MeterSource, meter_sensors
from .modbus import KIND_OF_ROLE
from .plan_sensors import (
    PLAN_SENSORS,
    STANDALONE_PLAN,
    PlanSensor,
    StandalonePlanSensor,
    next_changes,
)

# The coordinator pushes updates; entities never poll.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class FractalNodeSensorDescription(SensorEntityDescription):
    value_fn: Callable[[NodeState], str | float | datetime | None]
    available_fn: Callable[[NodeState], bool] = lambda _: True
    attributes_fn: Callable[[NodeState], dict[str, str | None]] | None = None


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
        # Why it is not connected, or which operation fails while connected.
        attributes_fn=lambda state: {"reason": state.link_reason},
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
    executor = entry.runtime_data.executor
    assert executor is not None  # set-up starts it before the platforms
    async_add_entities([NextPlanChangeSensor(executor.coordinator, coordinator)])
    has_battery = any(d.kind is DeviceKind.BATTERY for d in executor.envelope.descriptor.devices)
    async_add_entities(
        PlanSensor(executor.coordinator, coordinator, description)
        for description in PLAN_SENSORS
        if has_battery or not description.needs_battery
    )
    if (standalone := entry.runtime_data.standalone) is not None:
        async_add_entities([StandalonePlanSensor(standalone.coordinator, coordinator)])
    for subentry_id, node_device in entry.runtime_data.devices.items():
        sensors: list[SensorEntity] = list(_device_sensors(node_device))
        if KIND_OF_ROLE[Role(node_device.role)] in CONVERTERS:
            sensors.append(CurrentModeSensor(executor.coordinator, node_device, subentry_id))
        async_add_entities(sensors, config_subentry_id=subentry_id)
    for subentry_id, meter in entry.runtime_data.meters.items():
        if isinstance(meter, MeterSource):
            async_add_entities(meter_sensors(meter), config_subentry_id=subentry_id)


def _device_sensors(node_device: NodeDevice) -> list[DeviceSensor]:
    registers = map_registers(node_device)
    if registers:
        return [
            DeviceSensor(node_device.coordinators[r.group], r.name, _register_description(r))
            for r in registers
            if r.writable is None  # writable registers are numbers, selects or switches
        ]
    # A SunSpec device: its points are known from the models it reported at set-up; those the
    # envelope makes writable are numbers instead.
    setpoints = sunspec_setpoints(node_device)
    return [
        DeviceSensor(coordinator, name, _reading_description(reading))
        for coordinator in node_device.coordinators.values()
        for name, reading in (coordinator.data or {}).items()
        if name not in setpoints
    ]


def _register_description(register: Register) -> SensorEntityDescription:
    options = list(register.options.values()) if register.options else None
    return SensorEntityDescription(
        key=register.name,
        device_class=SensorDeviceClass(register.device_class) if register.device_class else None,
        native_unit_of_measurement=register.unit,
        state_class=SensorStateClass(register.state_class) if register.state_class else None,
        options=options,
    )


# SunSpec points carry a unit but no device class: these units say what they measure.
_SUNSPEC_CLASSES = {
    "W": (SensorDeviceClass.POWER, SensorStateClass.MEASUREMENT),
    "Wh": (SensorDeviceClass.ENERGY, SensorStateClass.TOTAL_INCREASING),
    "V": (SensorDeviceClass.VOLTAGE, SensorStateClass.MEASUREMENT),
    "A": (SensorDeviceClass.CURRENT, SensorStateClass.MEASUREMENT),
    "Hz": (SensorDeviceClass.FREQUENCY, SensorStateClass.MEASUREMENT),
}


def _reading_description(reading: Reading) -> SensorEntityDescription:
    device_class, state_class = _SUNSPEC_CLASSES.get(reading.unit or "", (None, None))
    return SensorEntityDescription(
        key=reading.name,
        device_class=device_class,
        native_unit_of_measurement=reading.unit if device_class else None,
        state_class=state_class,
    )


class FractalNodeSensor(FractalNodeEntity, SensorEntity):
    entity_description: FractalNodeSensorDescription

    @property
    def available(self) -> bool:
        return super().available and self.entity_description.available_fn(self.coordinator.data)

    @property
    def native_value(self) -> str | float | datetime | None:
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, str | None] | None:
        attributes_fn = self.entity_description.attributes_fn
        return attributes_fn(self.coordinator.data) if attributes_fn else None


class DeviceSensor(ModbusDeviceEntity, SensorEntity):
    def __init__(
        self, coordinator: DeviceCoordinator, key: str, description: SensorEntityDescription
    ) -> None:
        super().__init__(coordinator, key)
        self.entity_description = description

    @property
    def native_value(self) -> str | float | None:
        value = self.reading.value if self.reading else None
        return value if isinstance(value, str | int | float) else None


MODE_OPTIONS: list[str] = sorted(
    {mode.value for kind in CONVERTERS for mode in MODES_BY_KIND[kind]}
)
CURRENT_MODE = SensorEntityDescription(
    key="current_mode",
    translation_key="current_mode",
    device_class=SensorDeviceClass.ENUM,
    options=MODE_OPTIONS,
)
NEXT_PLAN_CHANGE = SensorEntityDescription(
    key="next_plan_change",
    translation_key="next_plan_change",
    device_class=SensorDeviceClass.TIMESTAMP,
)
EXECUTOR_SENSORS = (CURRENT_MODE, NEXT_PLAN_CHANGE, *PLAN_SENSORS, STANDALONE_PLAN)
"""The executor's sensors: a controllable device's current mode, the node's next plan change,
the plan in force (plan_sensors.py) and the standalone planner's last run."""


class CurrentModeSensor(CoordinatorEntity[ExecutorCoordinator], SensorEntity):
    """What the executor runs on a controllable device now: the mode, with the set-point, the
    plan it comes from and the reasons (clamps, holds) as attributes."""

    _attr_has_entity_name = True
    entity_description = CURRENT_MODE

    def __init__(
        self, coordinator: ExecutorCoordinator, node_device: NodeDevice, device_id: str
    ) -> None:
        super().__init__(coordinator)
        entry = coordinator.config_entry
        assert entry is not None
        node_id = entry.data[CONF_NODE_ID]
        self._device_id = device_id
        self._attr_unique_id = f"{node_id}_{device_id}_current_mode"
        self._attr_device_info = device_info(node_device, node_id)

    @property
    def _setpoint(self) -> Setpoint | None:
        return self.coordinator.data.setpoints.get(self._device_id)

    @property
    def native_value(self) -> str | None:
        setpoint = self._setpoint
        return setpoint.mode.value if setpoint is not None and setpoint.mode else None

    @property
    def extra_state_attributes(self) -> dict[str, object] | None:
        setpoint = self._setpoint
        if setpoint is None:
            return None
        return {
            "setpoint": setpoint.value,
            "quantity": setpoint.quantity.value,
            "source": setpoint.source,
            "plan_id": setpoint.plan_id,
            "reasons": list(setpoint.reasons),
        }


class NextPlanChangeSensor(CoordinatorEntity[ExecutorCoordinator], SensorEntity):
    """When the plans in force next change a device's command (or end)."""

    _attr_has_entity_name = True
    entity_description = NEXT_PLAN_CHANGE

    def __init__(
        self, coordinator: ExecutorCoordinator, node_coordinator: FractalNodeCoordinator
    ) -> None:
        super().__init__(coordinator)
        node = FractalNodeEntity(node_coordinator, NEXT_PLAN_CHANGE)
        self._attr_unique_id = node.unique_id
        self._attr_device_info = node.device_info

    @property
    def native_value(self) -> datetime | None:
        return self.coordinator.data.next_change

    @property
    def extra_state_attributes(self) -> dict[str, object]:
        """What changes then: the new command per device."""
        entry = self.coordinator.config_entry
        assert entry is not None
        return {"changes": next_changes(self.coordinator.data, entry)}
