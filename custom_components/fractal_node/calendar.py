"""The plan as a calendar: one event per device and run of equal commands, from whichever
plan the executor runs (override, DSO event, aggregator, standalone or default plan).

Events come from the plans of the executor's last tick (`fractal.executor.timeline`, which
decides with the executor's own priorities), so the calendar shows what the executor does.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from homeassistant.components.calendar import (
    CalendarEntity,
    CalendarEntityDescription,
    CalendarEvent,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity
from homeassistant.util import dt as dt_util

from .coordinator import FractalNodeConfigEntry, FractalNodeCoordinator
from .entity import FractalNodeEntity
from .executor_runtime import ExecutorCoordinator
from .fractal.executor.timeline import Segment, timeline
from .fractal.protocol import Command, Mode

PARALLEL_UPDATES = 0

INSTANT = timedelta(microseconds=1)
PLAN_CALENDAR = CalendarEntityDescription(key="plan", translation_key="plan")

# How a command's value reads: watts as kW, amperes, metres.
_VALUE_FORMATS = {
    Mode.CHARGE: lambda value: f"{value / 1000:g} kW",
    Mode.DISCHARGE: lambda value: f"{value / 1000:g} kW",
    Mode.EXPORT_LIMIT: lambda value: f"{value / 1000:g} kW",
    Mode.EV_CURRENT: lambda value: f"{value:g} A",
    Mode.LEVEL: lambda value: f"{value:g} m",
}


async def async_setup_entry(
    hass: HomeAssistant,
    entry: FractalNodeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    executor = entry.runtime_data.executor
    assert executor is not None  # set-up starts it before the platforms
    async_add_entities([PlanCalendar(executor.coordinator, entry.runtime_data.coordinator)])


def command_text(command: Command) -> str:
    """'charge 2.5 kW', 'balance', 'ev_current 16 A'."""
    value_format = _VALUE_FORMATS.get(command.mode)
    if command.value is None or value_format is None:
        return command.mode.value
    return f"{command.mode.value} {value_format(command.value)}"


class PlanCalendar(CoordinatorEntity[ExecutorCoordinator], CalendarEntity):
    """The plans in force, per device."""

    _attr_has_entity_name = True
    entity_description = PLAN_CALENDAR

    def __init__(
        self, coordinator: ExecutorCoordinator, node_coordinator: FractalNodeCoordinator
    ) -> None:
        super().__init__(coordinator)
        node = FractalNodeEntity(node_coordinator, PLAN_CALENDAR)
        self._attr_unique_id = node.unique_id
        self._attr_device_info = node.device_info
        self._entry = node_coordinator.config_entry

    @property
    def event(self) -> CalendarEvent | None:
        """The first device's current command (batteries come first)."""
        now = dt_util.utcnow()
        current = self._segments(now, now + INSTANT)
        return self._event(current[0]) if current else None

    async def async_get_events(
        self, hass: HomeAssistant, start_date: datetime, end_date: datetime
    ) -> list[CalendarEvent]:
        return [self._event(segment) for segment in self._segments(start_date, end_date)]

    def _segments(self, start: datetime, end: datetime) -> list[Segment]:
        devices = self._entry.runtime_data.runtime.descriptor().devices
        return timeline(self.coordinator.data.sources, devices, start, end)

    def _event(self, segment: Segment) -> CalendarEvent:
        subentry = self._entry.subentries.get(segment.device)
        name = subentry.title if subentry is not None else segment.device
        plan = f", plan {segment.plan_id}" if segment.plan_id else ""
        return CalendarEvent(
            start=segment.start,
            end=segment.end,
            summary=f"{name}: {command_text(segment.command)}",
            description=f"source {segment.source}{plan}",
            uid=f"{segment.device}-{segment.start.isoformat()}",
        )
