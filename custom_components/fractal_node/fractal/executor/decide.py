"""`decide`: one executor tick, a pure function of the time, readings, plans and envelope.

Priority: the safety envelope always; then per device the first of householder override, DSO
event, aggregator plan and local default plan that has a command for the device at `now`
(inside its slots, before its expiry); then a built-in safe default. An expired plan, or one
not refreshed because the link is lost, is past its expiry and so falls through by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import MappingProxyType

from ..protocol import Command, Device, DeviceKind, Mode, Plan, Quantity
from . import modes
from .envelope import Envelope
from .model import SAFE_DEFAULT, Chosen, Decision, ExecutorState, Readings, Setpoint, Sources

MAX_ELAPSED_S = 60.0
"""Ticks are seconds apart; after a longer gap (a restart) the executor moves as if only this
much time had passed, so rates and energies are never extrapolated over the gap."""

Converter = Callable[[modes.Tick, Device, Chosen], Setpoint]

# Batteries first: the others' *balance* uses the surplus left after them.
CONVERTERS: MappingProxyType[DeviceKind, Converter] = MappingProxyType(
    {
        DeviceKind.BATTERY: modes.battery,
        DeviceKind.EV_CHARGER: modes.ev_charger,
        DeviceKind.IMMERSION: modes.immersion,
        DeviceKind.HYDRO: modes.hydro,
        DeviceKind.PV_INVERTER: modes.pv_inverter,
    }
)

SAFE_DEFAULTS: MappingProxyType[DeviceKind, Command | None] = MappingProxyType(
    {
        DeviceKind.BATTERY: Command(Mode.BALANCE),
        DeviceKind.EV_CHARGER: Command(Mode.OFF),
        DeviceKind.IMMERSION: Command(Mode.OFF),
        DeviceKind.HYDRO: None,  # keeps its level set-point
        DeviceKind.PV_INVERTER: Command(Mode.ON),
    }
)
"""What a device does when no plan has a command for it."""


def decide(
    now: datetime,
    readings: Readings,
    sources: Sources,
    envelope: Envelope,
    state: ExecutorState,
) -> Decision:
    """The set-point for every controllable device, with reasons, and the state to keep."""
    tick = modes.Tick(
        readings=readings,
        envelope=envelope,
        state=state,
        elapsed_h=_elapsed_s(state.at, now) / 3600,
        export_cap_w=export_cap(now, sources, envelope),
        grid_w=readings.grid,
        ev_energy={},
    )
    setpoints: dict[str, Setpoint] = {}
    for kind, convert in CONVERTERS.items():
        for device in envelope.descriptor.devices:
            if device.kind is kind:
                setpoints[device.id] = convert(tick, device, choose(device, now, sources))
    return Decision(MappingProxyType(setpoints), _next_state(now, state, setpoints, tick))


def choose(device: Device, now: datetime, sources: Sources) -> Chosen:
    """The command of the highest-priority plan active for `device` at `now`."""
    for plan in sources.by_priority():
        chosen = _command_in(plan, device, now)
        if chosen is not None:
            return chosen
    return Chosen(SAFE_DEFAULTS.get(device.kind), SAFE_DEFAULT)


def _command_in(plan: Plan | None, device: Device, now: datetime) -> Chosen | None:
    if plan is None or (slot := plan.slot_at(now)) is None:
        return None
    device_plan = plan.devices.get(device.id)
    if device_plan is None or device_plan.kind is not device.kind:
        return None
    command = device_plan.command_at(slot)
    if command is None:
        return None
    return Chosen(command, plan.source.value, plan.id, slot, plan.step)


def export_cap(now: datetime, sources: Sources, envelope: Envelope) -> float | None:
    """The most the site may export now: the DNO's limit, or a grid meter's planned export
    limit when lower. None: no limit."""
    caps = [envelope.export_max_w]
    for device in envelope.descriptor.devices:
        if device.kind is DeviceKind.GRID_METER:
            command = choose(device, now, sources).command
            if command is not None and command.mode is Mode.EXPORT_LIMIT:
                caps.append(command.value)
    known = [cap for cap in caps if cap is not None]
    return min(known) if known else None


def _elapsed_s(before: datetime | None, now: datetime) -> float:
    if before is None:
        return 0.0
    return min(max((now - before).total_seconds(), 0.0), MAX_ELAPSED_S)


def _next_state(
    now: datetime, state: ExecutorState, setpoints: dict[str, Setpoint], tick: modes.Tick
) -> ExecutorState:
    written = dict(state.setpoints)
    for device_id, setpoint in setpoints.items():
        if setpoint.value is not None:
            written[device_id] = setpoint.value
        elif setpoint.quantity is not Quantity.HYDRO_LEVEL_M:
            written.pop(device_id, None)
    return ExecutorState(now, MappingProxyType(written), MappingProxyType(tick.ev_energy))
