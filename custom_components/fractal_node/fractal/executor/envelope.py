"""The installer's safety envelope, applied to plans and set-points.

Decision (DESIGN §4, docs/protocol.md): a plan asking for a device or mode the node does not
have is rejected whole (`envelope_check`, the link's callback); a value beyond a device's
limits is clamped when executed, and every clamped part is listed with its path for the ack's
`clamped` (`clamped_parts`). Clamping is done per tick by the same functions, so what the ack
says is what the devices get. A limit the installer left out is treated as 0 (that way is
closed): a battery without `max_charge_w` never charges.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..protocol import (
    Command,
    Device,
    DeviceEnvelope,
    DevicePlan,
    Mode,
    NodeDescriptor,
    Plan,
    Problem,
    compatibility_problems,
)

EV_CURRENT_MIN_A = 6.0
"""IEC 61851: a charger cannot signal less than 6 A; used when the envelope gives no minimum."""


@dataclass(frozen=True)
class Envelope:
    """The node's devices and their limits, as published in its descriptor."""

    descriptor: NodeDescriptor

    def device(self, device_id: str) -> Device | None:
        return self.descriptor.device(device_id)

    @property
    def export_max_w(self) -> float | None:
        return self.descriptor.envelope.export_max_w

    @property
    def import_max_w(self) -> float | None:
        return self.descriptor.envelope.import_max_w

    def envelope_check(self, plan: Plan) -> list[Problem]:
        """What makes the node reject `plan` whole: devices, kinds or modes it does not have.
        Values beyond the limits are not here: they are clamped (see `clamped_parts`)."""
        return [p for p in compatibility_problems(plan, self.descriptor) if p.path != "node"]

    def clamped_parts(self, plan: Plan) -> list[Problem]:
        """Every command of `plan` the envelope limits, with its path (for the ack's `clamped`)."""
        found: list[Problem] = []
        for device_id, device_plan in plan.devices.items():
            device = self.device(device_id)
            if device is None:
                continue
            for path, command in _commands(device_plan, f"devices.{device_id}"):
                note = self.command_note(device, command)
                if note is not None:
                    found.append(Problem(path, note))
        return found

    def command_note(self, device: Device, command: Command) -> str | None:
        """Why the envelope changes `command` for `device`, or None if it runs as planned."""
        limits, value = device.envelope, command.value
        if value is None:
            return None
        match command.mode:
            case Mode.CHARGE:
                return _above(f"charge {value:g} W", value, "max_charge_w", limits.max_charge_w)
            case Mode.DISCHARGE:
                return _above(
                    f"discharge {value:g} W", value, "max_discharge_w", limits.max_discharge_w
                )
            case Mode.EV_CURRENT:
                return _ev_current_note(value, limits)
            case Mode.LEVEL:
                return _level_note(value, limits)
            case Mode.EXPORT_LIMIT:
                return _above(f"export limit {value:g} W", value, "export_max_w", self.export_max_w)
        return None


def _commands(device_plan: DevicePlan, path: str) -> Iterator[tuple[str, Command]]:
    if device_plan.setpoints is not None:
        for slot in range(len(device_plan.setpoints.values)):
            command = device_plan.command_at(slot)
            if command is not None:
                yield f"{path}.setpoints.values[{slot}]", command
        return
    for index, window in enumerate(device_plan.windows or ()):
        yield f"{path}.windows[{index}].value", Command(window.mode, window.value)


def _above(what: str, value: float, name: str, limit: float | None) -> str | None:
    if limit is None:
        return f"{what}: no {name} in the envelope, not run"
    if value > limit:
        return f"{what} limited to {name} {limit:g} W"
    return None


def _ev_current_note(value: float, limits: DeviceEnvelope) -> str | None:
    low, high = ev_current_range(limits)
    if high is None:
        return f"{value:g} A: no ev_current_max_a in the envelope, not run"
    if value > high:
        return f"{value:g} A limited to ev_current_max_a {high:g} A"
    if value < low:
        return f"{value:g} A is below {low:g} A: charges at {low:g} A until the slot's energy is in"
    return None


def _level_note(value: float, limits: DeviceEnvelope) -> str | None:
    low, high = limits.level_min_m, limits.level_max_m
    if low is None or high is None:
        return f"level {value:g} m: no level band in the envelope, not run"
    if not low <= value <= high:
        return f"level {value:g} m limited to the band {low:g}-{high:g} m"
    return None


def ev_current_range(limits: DeviceEnvelope) -> tuple[float, float | None]:
    """(minimum, maximum) charging current; maximum None when the installer set none."""
    low = limits.ev_current_min_a
    return (EV_CURRENT_MIN_A if low is None else max(low, 0.0)), limits.ev_current_max_a


def clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def battery_range(limits: DeviceEnvelope, soc_pct: float) -> tuple[float, float]:
    """(lowest, highest) battery power, W (> 0 charging): power limits and SoC bounds."""
    low = -float(limits.max_discharge_w or 0)
    high = float(limits.max_charge_w or 0)
    if limits.soc_min_pct is not None and soc_pct <= limits.soc_min_pct:
        low = 0.0  # empty as far as the installer allows: no discharge
    if limits.soc_max_pct is not None and soc_pct >= limits.soc_max_pct:
        high = 0.0  # full: no charge
    return low, high


def level_band(limits: DeviceEnvelope) -> tuple[float, float] | None:
    if limits.level_min_m is None or limits.level_max_m is None:
        return None
    return limits.level_min_m, limits.level_max_m
