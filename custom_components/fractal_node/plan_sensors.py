"""The plan in force as node sensors: its source and expiry, the state of charge it expects
against the one measured, what changes next, and the standalone planner's last run.

Values are as of the executor's last tick (every 5 s), from the plans it decided with.
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
from homeassistant.const import PERCENTAGE, EntityCategory
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .calendar import command_text
from .coordinator import FractalNodeConfigEntry, FractalNodeCoordinator
from .entity import FractalNodeEntity
from .executor_runtime import ExecutorCoordinator, ExecutorView
from .fractal.executor import choose
from .fractal.executor.timeline import controllable, expected_soc, plan_in_force
from .fractal.protocol import PlanSource
from .standalone import StandaloneCoordinator

SAFE_DEFAULT_OPTION = "safe_default"
PLAN_SOURCES = [*(source.value for source in PlanSource), SAFE_DEFAULT_OPTION]
STANDALONE_STATUSES = ["optimal", "feasible", "relaxed", "no_plan"]


def _plan_source(view: ExecutorView) -> str | None:
    if view.at is None:
        return None
    plan = plan_in_force(view.sources, view.at)
    return plan.source.value if plan is not None else SAFE_DEFAULT_OPTION


def _plan_expiry(view: ExecutorView) -> datetime | None:
    plan = plan_in_force(view.sources, view.at) if view.at is not None else None
    return min(plan.end, plan.expiry) if plan is not None else None


def _expected_soc(view: ExecutorView) -> float | None:
    if view.at is None:
        return None
    value = expected_soc(view.sources, view.at)
    return round(value, 1) if value is not None else None


def next_changes(view: ExecutorView, entry: FractalNodeConfigEntry) -> dict[str, str]:
    """What the devices whose command changes at the next plan change will do then, by the
    device's name ('none' where no command follows)."""
    if view.at is None or view.next_change is None:
        return {}
    devices = controllable(entry.runtime_data.runtime.descriptor().devices)
    found = {}
    for device in devices:
        later = choose(device, view.next_change, view.sources).command
        if later != choose(device, view.at, view.sources).command:
            subentry = entry.subentries.get(device.id)
            name = subentry.title if subentry is not None else device.id
            found[name] = command_text(later) if later is not None else "none"
    return found


@dataclass(frozen=True, kw_only=True)
class PlanSensorDescription(SensorEntityDescription):
    value_fn: Callable[[ExecutorView], str | float | datetime | None]
    needs_battery: bool = False


PLAN_SENSORS: tuple[PlanSensorDescription, ...] = (
    PlanSensorDescription(
        key="plan_source",
        translation_key="plan_source",
        device_class=SensorDeviceClass.ENUM,
        options=PLAN_SOURCES,
        value_fn=_plan_source,
    ),
    PlanSensorDescription(
        key="plan_expiry",
        translation_key="plan_expiry",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_plan_expiry,
    ),
    PlanSensorDescription(
        key="expected_soc",
        translation_key="expected_soc",
        device_class=SensorDeviceClass.BATTERY,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_expected_soc,
        needs_battery=True,
    ),
    PlanSensorDescription(
        key="actual_soc",
        translation_key="actual_soc",
        device_class=SensorDeviceClass.BATTERY,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda view: view.soc_pct,
        needs_battery=True,
    ),
)


class PlanSensor(CoordinatorEntity[ExecutorCoordinator], SensorEntity):
    """A node sensor of the plan in force, on the node's device."""

    _attr_has_entity_name = True
    entity_description: PlanSensorDescription

    def __init__(
        self,
        coordinator: ExecutorCoordinator,
        node_coordinator: FractalNodeCoordinator,
        description: PlanSensorDescription,
    ) -> None:
        super().__init__(coordinator)
        self.entity_description = description
        node = FractalNodeEntity(node_coordinator, description)
        self._attr_unique_id = node.unique_id
        self._attr_device_info = node.device_info

    @property
    def native_value(self) -> str | float | datetime | None:
        return self.entity_description.value_fn(self.coordinator.data)


STANDALONE_PLAN = SensorEntityDescription(
    key="standalone_plan",
    translation_key="standalone_plan",
    device_class=SensorDeviceClass.ENUM,
    options=STANDALONE_STATUSES,
    entity_category=EntityCategory.DIAGNOSTIC,
)


class StandalonePlanSensor(CoordinatorEntity[StandaloneCoordinator], SensorEntity):
    """The standalone planner's last run: its status, with the plan, its expected cost and
    every problem found in the inputs as attributes (unknown until the first run)."""

    _attr_has_entity_name = True
    entity_description = STANDALONE_PLAN

    def __init__(
        self, coordinator: StandaloneCoordinator, node_coordinator: FractalNodeCoordinator
    ) -> None:
        super().__init__(coordinator)
        node = FractalNodeEntity(node_coordinator, STANDALONE_PLAN)
        self._attr_unique_id = node.unique_id
        self._attr_device_info = node.device_info

    @property
    def native_value(self) -> str | None:
        outcome = self.coordinator.data
        return outcome.status if outcome is not None else None

    @property
    def extra_state_attributes(self) -> dict[str, object] | None:
        outcome = self.coordinator.data
        if outcome is None:
            return None
        plan = outcome.plan
        return {
            "plan_id": plan.id if plan is not None else None,
            "start": plan.start.isoformat() if plan is not None else None,
            "end": plan.end.isoformat() if plan is not None else None,
            "cost_p": round(outcome.cost_p, 2) if outcome.cost_p is not None else None,
            "problems": list(outcome.problems),
        }
