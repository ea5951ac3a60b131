"""The plan executor inside Home Assistant (docs/executor.md): every 5 s the library's `decide`
turns the plans in force into set-points, which are written to the devices.

* Readings: the node's grid power (its power flows) and each device's latest polled values,
  named as the executor expects (`soc_pct`, `current_a`, `level_m`).
* Sources, by priority: the householder's override (`override`), the aggregator's plan in
  force (the link's inbox), the local default plan: the standalone planner's plan while it is
  in force (standalone.py), else the time-of-use default (made again each UTC day).
* Writes: `register_writes` names the generic maps' registers (batteries, EV chargers, hydro,
  immersion relays); `Device.write` clamps to the installer's envelope again and reads back.
  A SunSpec inverter's export limit is written as an output limit (`sunspec_controls`): the
  limit plus what the house uses now. A device is written only when its set-point
  changes (or the last write failed); a failed write is logged once per device until one works.
* Results are pushed to an `ExecutorCoordinator`: the current mode of each controllable device
  and the next change of the plans in force.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .device_runtime import NodeDevice
from .fractal.devices import Device, ModbusDeviceError, SunSpecDevice
from .fractal.devices.sunspec_controls import output_limit_w, write_export_limit
from .fractal.executor import (
    CheapWindow,
    Envelope,
    ExecutorState,
    Readings,
    Setpoint,
    Sources,
    decide,
    default_plan,
    register_writes,
)
from .fractal.executor.override import STEP_S as OVERRIDE_STEP_S
from .fractal.node import NodeRuntime
from .fractal.protocol import DevicePlan, Plan, PlanSource, Quantity, Window

_LOGGER = logging.getLogger(__package__)

TICK_INTERVAL: Final = timedelta(seconds=5)
_UNWRITTEN: Final = object()
# The executor's metric names, from the generic maps' register names.
METRICS: Final = MappingProxyType(
    {
        "soc": "soc_pct",
        "current": "current_a",
        "voltage": "voltage_v",
        "river_level_upstream": "level_m",
    }
)


@dataclass(frozen=True)
class ExecutorView:
    """What the entities show: each controllable device's set-point (mode, value, source,
    reasons) and when the plans in force next change."""

    setpoints: Mapping[str, Setpoint] = field(default_factory=dict)
    next_change: datetime | None = None
    sources: Sources = field(default_factory=Sources)
    """The plans the tick decided from (the plan calendar and plan sensors show them)."""
    soc_pct: float | None = None
    """The batteries' state of charge read at the tick."""
    at: datetime | None = None
    """The tick's time: what the plan entities show is as of then."""


class ExecutorCoordinator(DataUpdateCoordinator[ExecutorView]):
    """Pushed by the executor's tick; nothing is polled."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} executor",
            update_interval=None,
            always_update=False,
        )
        self.data = ExecutorView()

    async def _async_update_data(self) -> ExecutorView:
        return self.data


class NodeExecutor:
    """Runs `decide` on a timer and writes what changed."""

    def __init__(
        self,
        hass: HomeAssistant,
        runtime: NodeRuntime,
        devices: Mapping[str, NodeDevice],
        envelope: Envelope,
        *,
        aggregator_plan: Callable[[], Plan | None],
        coordinator: ExecutorCoordinator,
        standalone_plan: Callable[[], Plan | None] = lambda: None,
        cheap: CheapWindow | None = None,
    ) -> None:
        """`cheap`: the default plan's daily cheap window (None: the default only balances)."""
        self._hass = hass
        self._runtime = runtime
        self._devices = devices
        self.envelope = envelope
        self._aggregator_plan = aggregator_plan
        self._standalone_plan = standalone_plan
        self._cheap = cheap
        self.coordinator = coordinator
        self.overrides: dict[str, Plan] = {}
        """The householder's overrides by device (services: `fractal_node.override`)."""
        self._state = ExecutorState()
        self._written: dict[str, float | None] = {}
        self._failing: set[str] = set()
        self._default: Plan | None = None
        self._timer: CALLBACK_TYPE | None = None
        self._ticking = False

    def start(self) -> None:
        self._timer = async_track_time_interval(
            self._hass, self._tick, TICK_INTERVAL, name="fractal_node executor"
        )

    @callback
    def stop(self) -> None:
        if self._timer is not None:
            self._timer()
            self._timer = None

    @callback
    def _tick(self, now: datetime) -> None:
        if self._ticking:  # a slow device still holds the last tick: skip this one
            return
        entry = self.coordinator.config_entry
        assert entry is not None
        entry.async_create_background_task(
            self._hass, self.async_tick(now), "fractal_node executor tick"
        )

    def readings(self) -> Readings:
        """The node's grid power and each device's metrics, garbage and all (the executor
        treats unusable values as unknown)."""
        metrics: dict[str, dict[str, object]] = {}
        for device_id, node_device in self._devices.items():
            values: dict[str, object] = {}
            for register, metric in METRICS.items():
                reading = node_device.reading(register)
                if reading is not None and node_device.available:
                    values[metric] = reading.value
            metrics[device_id] = values
        socs = [v["soc_pct"] for v in metrics.values() if "soc_pct" in v]
        return Readings(
            grid_w=self._runtime.state().power.grid_w,
            soc_pct=socs[0] if len(socs) == 1 else None,
            devices=metrics,
        )

    def sources(self, now: datetime) -> Sources:
        default = self._default
        if default is None or default.slot_at(now) is None:
            default = self._default = default_plan(self.envelope.descriptor, now, self._cheap)
        standalone = self._standalone_plan()
        if standalone is not None and standalone.slot_at(now) is not None:
            default = standalone  # the local default is the standalone plan while in force
        for device_id, plan in list(self.overrides.items()):
            if now >= min(plan.end, plan.expiry):
                del self.overrides[device_id]  # it has ended: forget it
        override = merged_override(self.overrides, now)
        return Sources(override=override, aggregator=self._aggregator_plan(), default=default)

    async def async_tick(self, now: datetime | None = None) -> None:
        """One tick: decide, write what changed, show it."""
        now = now or dt_util.utcnow()
        sources = self.sources(now)
        readings = self.readings()
        decision = decide(now, readings, sources, self.envelope, self._state)
        self._state = decision.state
        self._ticking = True
        try:
            for setpoint in decision.setpoints.values():
                await self._write(setpoint)
        finally:
            self._ticking = False
        self.coordinator.async_set_updated_data(
            ExecutorView(decision.setpoints, next_change(sources, now), sources, readings.soc, now)
        )

    async def _write(self, setpoint: Setpoint) -> None:
        node_device = self._devices.get(setpoint.device)
        if node_device is None:
            return
        value = self._target(node_device.device, setpoint)
        if self._written.get(setpoint.device, _UNWRITTEN) == value:
            return
        command = device_command(node_device.device, setpoint, value)
        if command is None:
            return  # relays and inverters without a map or control for it: not commanded
        try:
            await command()
        except ModbusDeviceError as error:
            self._written.pop(setpoint.device, None)  # try again next tick
            if setpoint.device not in self._failing:
                self._failing.add(setpoint.device)
                _LOGGER.warning(
                    "%s: set-point %s not written: %s", node_device.subentry.title, value, error
                )
            return
        if setpoint.device in self._failing:
            self._failing.discard(setpoint.device)
            _LOGGER.info("%s: set-points are written again", node_device.subentry.title)
        self._written[setpoint.device] = value

    def _target(self, device: object, setpoint: Setpoint) -> float | None:
        """What the device is told: the set-point, or for a SunSpec inverter the output that
        keeps the export within the limit while the house uses what it uses now."""
        if isinstance(device, SunSpecDevice) and setpoint.quantity is Quantity.EXPORT_LIMIT_W:
            return output_limit_w(setpoint.value, self._runtime.state().power.load_w)
        return setpoint.value


def device_command(
    device: object, setpoint: Setpoint, value: float | None
) -> Callable[[], Awaitable[object]] | None:
    """How to carry out `setpoint` (with `value`, see `_target`) on `device`, or None."""
    if isinstance(device, SunSpecDevice) and setpoint.quantity is Quantity.EXPORT_LIMIT_W:
        return lambda: write_export_limit(device, value)
    writes = register_writes(replace(setpoint, value=value))
    if not isinstance(device, Device) or not writes:
        return None

    async def write_registers() -> None:
        for name, register_value in writes:
            await device.write(name, register_value)

    return write_registers


def merged_override(overrides: Mapping[str, Plan], now: datetime) -> Plan | None:
    """One plan for the executor's override slot from each device's own override (made again
    every tick, so a device's part ends with its own expiry)."""
    if len(overrides) <= 1:
        return next(iter(overrides.values()), None)
    expiry = max(plan.expiry for plan in overrides.values())
    slots = math.ceil((expiry - now).total_seconds() / OVERRIDE_STEP_S)
    devices = {}
    for device_id, plan in overrides.items():
        window = (plan.devices[device_id].windows or ())[0]
        end = math.ceil((min(plan.end, plan.expiry) - now).total_seconds() / OVERRIDE_STEP_S)
        devices[device_id] = DevicePlan(
            kind=plan.devices[device_id].kind,
            windows=(Window(start=0, end=end, mode=window.mode, value=window.value),),
        )
    first = next(iter(overrides.values()))
    return Plan(
        # Stable while the overrides are (EV slot energy is counted per plan id and slot).
        id=f"override-{len(overrides)}-{max(p.issued for p in overrides.values()):%Y%m%dT%H%M%S}",
        node=first.node,
        issued=now,
        start=now,
        step=OVERRIDE_STEP_S,
        slots=slots,
        expiry=expiry,
        source=PlanSource.OVERRIDE,
        devices=devices,
    )


def next_change(sources: Sources, now: datetime) -> datetime | None:
    """When the command of some device next changes in the highest plan in force (the
    start of the next slot that differs), or the plan's end; None without a plan."""
    for plan in sources.by_priority():
        slot = plan.slot_at(now) if plan is not None else None
        if plan is None or slot is None:
            continue
        current = {d: p.command_at(slot) for d, p in plan.devices.items()}
        for later in range(slot + 1, plan.slots):
            if plan.slot_start(later) >= plan.expiry:
                break
            if any(p.command_at(later) != current[d] for d, p in plan.devices.items()):
                return plan.slot_start(later)
        return min(plan.end, plan.expiry)
    return None
