"""The fractal protocol: the documents a node and an aggregator exchange.

Reference: docs/protocol.md. Parse anything that arrives with `parse(Model, raw)`, which
never raises; write documents with `dump(doc)` (compact JSON)."""

from .ack import Issue, PlanAck
from .base import (
    MESSAGE_LIMIT,
    SHADOW_STATE_LIMIT,
    Document,
    Problem,
    Record,
    dump,
    shadow_payload,
    shadow_size,
    to_jsonable,
)
from .flex import FlexibilityEvent
from .node import Device, DeviceEnvelope, NodeDescriptor, NodeEnvelope
from .parsing import BY_SCHEMA, DOCUMENT_TYPES, Parsed, parse, parse_any
from .plan import (
    MAX_HORIZON,
    MAX_SLOTS,
    STEPS_S,
    Command,
    DevicePlan,
    Expected,
    Plan,
    Setpoints,
    Tolerance,
    Window,
)
from .rules import ENVELOPE_FIELDS_BY_KIND, MODES_BY_KIND, QUANTITY_BY_KIND, VALUE_RULES
from .telemetry import EnergyCounters, PlanPosition, Reading, TelemetryBatch, TelemetrySnapshot
from .types import (
    DeviceKind,
    FlexDirection,
    FlexStatus,
    LinkMode,
    Mode,
    PlanSource,
    PlanStatus,
    Quantity,
    Trajectory,
)

__all__ = [
    "BY_SCHEMA",
    "DOCUMENT_TYPES",
    "ENVELOPE_FIELDS_BY_KIND",
    "MAX_HORIZON",
    "MAX_SLOTS",
    "MESSAGE_LIMIT",
    "MODES_BY_KIND",
    "QUANTITY_BY_KIND",
    "SHADOW_STATE_LIMIT",
    "STEPS_S",
    "VALUE_RULES",
    "Command",
    "Device",
    "DeviceEnvelope",
    "DeviceKind",
    "DevicePlan",
    "Document",
    "EnergyCounters",
    "Expected",
    "FlexDirection",
    "FlexStatus",
    "FlexibilityEvent",
    "Issue",
    "LinkMode",
    "Mode",
    "NodeDescriptor",
    "NodeEnvelope",
    "Parsed",
    "Plan",
    "PlanAck",
    "PlanPosition",
    "PlanSource",
    "PlanStatus",
    "Problem",
    "Quantity",
    "Reading",
    "Record",
    "Setpoints",
    "TelemetryBatch",
    "TelemetrySnapshot",
    "Tolerance",
    "Trajectory",
    "Window",
    "dump",
    "parse",
    "parse_any",
    "shadow_payload",
    "shadow_size",
    "to_jsonable",
]
