"""Whether a plan suits a node: its devices, their kinds and the modes they accept.

Both halves use it: the aggregator before writing a plan, the node when one arrives (before
its executor checks the values against the installer's envelope)."""

from __future__ import annotations

from .base import Problem, join_path
from .node import NodeDescriptor
from .plan import DevicePlan, Plan


def compatibility_problems(plan: Plan, descriptor: NodeDescriptor) -> list[Problem]:
    """Every way `plan` asks `descriptor`'s node for something it does not have or accept."""
    found: list[Problem] = []
    if plan.node != descriptor.node:
        found.append(Problem("node", f"the plan is for {plan.node!r}, not {descriptor.node!r}"))
    for device_id, device_plan in plan.devices.items():
        path = join_path("devices", device_id)
        device = descriptor.device(device_id)
        if device is None:
            found.append(Problem(path, f"node {descriptor.node!r} has no device {device_id!r}"))
        elif device.kind is not device_plan.kind:
            message = f"is a {device.kind.value} at this node, not a {device_plan.kind.value}"
            found.append(Problem(join_path(path, "kind"), message))
        else:
            found.extend(_mode_problems(device_plan, frozenset(device.capabilities), path))
    return found


def _mode_problems(device_plan: DevicePlan, accepted: frozenset[str], path: str) -> list[Problem]:
    """One problem per mode the device does not accept, at the first place asking for it."""
    found: list[Problem] = []
    reported: set[str] = set()
    for where, mode in _requested_modes(device_plan, path):
        if mode not in accepted and mode not in reported:
            reported.add(mode)
            found.append(Problem(where, f"the device does not accept mode {mode}"))
    return found


def _requested_modes(device_plan: DevicePlan, path: str) -> list[tuple[str, str]]:
    if device_plan.setpoints is not None:
        values_path = join_path(path, "setpoints", "values")
        return [
            (join_path(values_path, slot), command.mode)
            for slot in range(len(device_plan.setpoints.values))
            if (command := device_plan.command_at(slot)) is not None
        ]
    return [
        (join_path(path, "windows", index, "mode"), window.mode)
        for index, window in enumerate(device_plan.windows or ())
    ]
