"""NodeDescriptor: who a node is, what it controls and the limits it never exceeds."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import NODE_BUDGET, Document, Problem, Record, duplicates, join_path
from .rules import ENVELOPE_FIELDS_BY_KIND, MODES_BY_KIND
from .types import (
    DeviceId,
    DeviceKind,
    LinkMode,
    Mode,
    NodeId,
    NonNegNumber,
    NonNegPowerW,
    Number,
    Percent,
    PositivePowerW,
    ShortText,
    Tags,
)


class DeviceEnvelope(Record):
    """The installer's safety limits for one device; no plan may exceed them."""

    max_charge_w: NonNegPowerW | None = None
    max_discharge_w: NonNegPowerW | None = None
    soc_min_pct: Percent | None = None
    soc_max_pct: Percent | None = None
    capacity_wh: NonNegNumber | None = None
    ev_current_min_a: NonNegNumber | None = None
    ev_current_max_a: NonNegNumber | None = None
    power_max_w: NonNegPowerW | None = None
    level_min_m: Number | None = None
    level_max_m: Number | None = None
    level_rate_max_m_per_h: NonNegNumber | None = None

    def problems(self, kind: DeviceKind, path: str) -> list[Problem]:
        found = [
            Problem(join_path(path, name), f"does not apply to a {kind.value} device")
            for name in type(self).model_fields
            if name not in ENVELOPE_FIELDS_BY_KIND[kind] and getattr(self, name) is not None
        ]
        for low, high in (
            ("soc_min_pct", "soc_max_pct"),
            ("ev_current_min_a", "ev_current_max_a"),
            ("level_min_m", "level_max_m"),
        ):
            low_value, high_value = getattr(self, low), getattr(self, high)
            if low_value is not None and high_value is not None and low_value > high_value:
                found.append(Problem(join_path(path, low), f"must be <= {high} ({high_value})"))
        return found


class Device(Record):
    id: DeviceId
    kind: DeviceKind
    role: ShortText | None = None
    """What the device is for at this site, e.g. `main`, `garage`, `hot_water`."""
    manufacturer: ShortText | None = None
    model: ShortText | None = None
    capabilities: tuple[Mode, ...] = ()
    """The modes this device accepts: a subset of what its kind allows."""
    envelope: DeviceEnvelope = Field(default_factory=DeviceEnvelope)

    def problems(self, path: str) -> list[Problem]:
        allowed = MODES_BY_KIND[self.kind]
        found = [
            Problem(join_path(path, "capabilities", index), _mode_not_for_kind(mode, self.kind))
            for index, mode in enumerate(self.capabilities)
            if mode not in allowed
        ]
        found.extend(
            Problem(join_path(path, "capabilities"), f"lists {mode} twice")
            for mode in duplicates(self.capabilities)
        )
        found.extend(self.envelope.problems(self.kind, join_path(path, "envelope")))
        return found


def _mode_not_for_kind(mode: Mode, kind: DeviceKind) -> str:
    allowed = ", ".join(sorted(MODES_BY_KIND[kind])) or "none"
    return f"mode {mode.value} is not valid for a {kind.value} device (allowed: {allowed})"


class NodeEnvelope(Record):
    """Limits at the node's grid connection."""

    import_max_w: PositivePowerW | None = None
    export_max_w: NonNegPowerW | None = None


class NodeDescriptor(Document):
    """Published in the classic shadow's `reported.node`."""

    KIND: ClassVar[str] = "node"
    SCHEMA: ClassVar[str] = "fractal.node.v1"
    SHADOW_PLACE: ClassVar[tuple[str, str] | None] = ("reported", "node")
    MAX_BYTES: ClassVar[int | None] = NODE_BUDGET

    schema_: Literal["fractal.node.v1"] = Field(default="fractal.node.v1", alias="schema")
    node: NodeId
    name: ShortText
    tags: Tags = Field(default_factory=dict)
    software: ShortText
    """Version of the node software, e.g. `0.1.0`."""
    link: LinkMode
    devices: tuple[Device, ...] = Field(default=(), max_length=32)
    envelope: NodeEnvelope = Field(default_factory=NodeEnvelope)

    def device(self, device_id: str) -> Device | None:
        return next((device for device in self.devices if device.id == device_id), None)

    def semantic_problems(self) -> list[Problem]:
        found: list[Problem] = []
        for index, device in enumerate(self.devices):
            found.extend(device.problems(join_path("devices", index)))
        found.extend(
            Problem("devices", f"device id {device_id!r} is used twice")
            for device_id in duplicates([device.id for device in self.devices])
        )
        return found
