"""Constrained value types and enumerations shared by every protocol document."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, PlainSerializer, StringConstraints

# Integers stay inside the range JSON parsers hold exactly (IEEE 754 doubles).
JSON_SAFE_INT = 2**53 - 1
# No single resource, feeder or community that we plan for comes near a gigawatt.
MAX_POWER_W = 1_000_000_000


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _compact_number(value: float) -> int | float:
    """Write whole floats as integers (`16`, not `16.0`): plans must fit 8 KB."""
    if value.is_integer() and abs(value) <= JSON_SAFE_INT:
        return int(value)
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""Timestamp with an explicit offset (naive ones are rejected), normalised to UTC."""

Number = Annotated[float, PlainSerializer(_compact_number, when_used="json")]
"""A finite number; whole values are written without a fraction."""

NonNegNumber = Annotated[Number, Field(ge=0)]
Percent = Annotated[Number, Field(ge=0, le=100)]
PowerW = Annotated[int, Field(ge=-MAX_POWER_W, le=MAX_POWER_W)]
NonNegPowerW = Annotated[int, Field(ge=0, le=MAX_POWER_W)]
PositivePowerW = Annotated[int, Field(gt=0, le=MAX_POWER_W)]
MeasuredW = Annotated[Number, Field(ge=-MAX_POWER_W, le=MAX_POWER_W)]
NonNegMeasuredW = Annotated[Number, Field(ge=0, le=MAX_POWER_W)]
Seq = Annotated[int, Field(ge=0, le=JSON_SAFE_INT)]

NodeId = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9:_-]{1,128}$")]
"""An AWS IoT thing name."""
DeviceId = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9_-]{1,32}$")]
DocumentId = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9._:-]{1,64}$")]
"""Plan and flexibility-event ids."""
MetricName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
TagKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
TagValue = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Tags = Annotated[dict[TagKey, TagValue], Field(max_length=16)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class DeviceKind(StrEnum):
    BATTERY = "battery"
    PV = "pv"
    PV_INVERTER = "pv_inverter"
    EV_CHARGER = "ev_charger"
    IMMERSION = "immersion"
    HYDRO = "hydro"
    GRID_METER = "grid_meter"
    SUB_METER = "sub_meter"


class Mode(StrEnum):
    """What a device does during a plan window (see docs/protocol.md, "Modes")."""

    BALANCE = "balance"
    CHARGE = "charge"
    DISCHARGE = "discharge"
    HOLD = "hold"
    EXPORT_LIMIT = "export_limit"
    EV_CURRENT = "ev_current"
    OFF = "off"
    ON = "on"
    LEVEL = "level"


class Quantity(StrEnum):
    """What a per-slot set-point series sets."""

    BATTERY_W = "battery_w"
    EV_CURRENT_A = "ev_current_a"
    EXPORT_LIMIT_W = "export_limit_w"
    HYDRO_LEVEL_M = "hydro_level_m"
    IMMERSION_ON = "immersion_on"


class LinkMode(StrEnum):
    STANDALONE = "standalone"
    LOCAL = "local"
    AWS = "aws"


class PlanSource(StrEnum):
    AGGREGATOR = "aggregator"
    STANDALONE = "standalone"
    DEFAULT = "default"
    OVERRIDE = "override"
    DSO = "dso"


class PlanStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXECUTING = "executing"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"


class Trajectory(StrEnum):
    """Quantities a plan can forecast and a node compares reality with."""

    SOC_PCT = "soc_pct"
    GRID_W = "grid_w"
    PV_W = "pv_w"
    LOAD_W = "load_w"


class FlexDirection(StrEnum):
    DOWN = "down"
    """Less import or more export."""
    UP = "up"
    """More import or less export."""


class FlexStatus(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
