"""The householder's override as a select per controllable device: "Follow the plan", or one
of the device's modes that needs no value ("hold the battery", "charge the car now") for
OVERRIDE_DURATION. The `fractal_node.override` action does the same with a value and a
duration of one's choice; both go through the executor's override, under the envelope."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from homeassistant.components.select import SelectEntity
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.update_coordinator import CoordinatorEntity
from homeassistant.util import dt as dt_util

from .const import CONF_NODE_ID, DOMAIN
from .device_entity import device_info
from .device_runtime import NodeDevice
from .executor_runtime import ExecutorCoordinator, NodeExecutor
from .fractal.executor.override import override_plan
from .fractal.protocol import DeviceKind, Mode
from .fractal.protocol.rules import MODES_BY_KIND, VALUE_RULES

OVERRIDE_DURATION: Final = timedelta(hours=2)
FOLLOW_PLAN: Final = "follow_plan"


def override_options(kind: DeviceKind) -> list[str]:
    """Follow the plan, then the kind's modes that need no value, in a stable order."""
    modes = sorted(mode.value for mode in MODES_BY_KIND[kind] if mode not in VALUE_RULES)
    return [FOLLOW_PLAN, *modes]


class OverrideSelect(CoordinatorEntity[ExecutorCoordinator], SelectEntity):
    """Choose what a device does for the next two hours, whatever the plan says."""

    _attr_has_entity_name = True
    _attr_translation_key = "override"

    def __init__(
        self,
        executor: NodeExecutor,
        node_device: NodeDevice,
        device_id: str,
        kind: DeviceKind,
    ) -> None:
        super().__init__(executor.coordinator)
        entry = executor.coordinator.config_entry
        assert entry is not None
        node_id = entry.data[CONF_NODE_ID]
        self._executor = executor
        self._device_id = device_id
        self._attr_options = override_options(kind)
        self._attr_unique_id = f"{node_id}_{device_id}_override"
        self._attr_device_info = device_info(node_device, node_id)

    @property
    def current_option(self) -> str | None:
        plan = self._executor.overrides.get(self._device_id)
        if plan is None or dt_util.utcnow() >= min(plan.end, plan.expiry):
            return FOLLOW_PLAN
        windows = plan.devices[self._device_id].windows or ()
        mode = windows[0].mode.value if windows and windows[0].mode else None
        return mode if mode in self.options else None

    @property
    def extra_state_attributes(self) -> dict[str, object] | None:
        plan = self._executor.overrides.get(self._device_id)
        return {"until": min(plan.end, plan.expiry).isoformat()} if plan else None

    async def async_select_option(self, option: str) -> None:
        now = dt_util.utcnow()
        if option == FOLLOW_PLAN:
            self._executor.overrides.pop(self._device_id, None)
        else:
            plan, problems = override_plan(
                self._executor.envelope,
                self._device_id,
                Mode(option),
                None,
                now=now,
                until=now + OVERRIDE_DURATION,
            )
            if plan is None:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="invalid_override",
                    translation_placeholders={"problems": "; ".join(map(str, problems))},
                )
            self._executor.overrides[self._device_id] = plan
        await self._executor.async_tick(now)  # at once, not at the next tick
        self.async_write_ha_state()
