"""FlexibilityEvent: a request (from a DSO or a market) to move a group's power for a while."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from .base import Document, Problem
from .types import (
    DocumentId,
    FlexDirection,
    FlexStatus,
    Number,
    PositivePowerW,
    ShortText,
    Tags,
    UtcDatetime,
)


class FlexibilityEvent(Document):
    """A DSO or market asks a group of nodes to move their net import for a while."""

    KIND: ClassVar[str] = "flex_event"
    SCHEMA: ClassVar[str] = "fractal.flex_event.v1"

    schema_: Literal["fractal.flex_event.v1"] = Field(
        default="fractal.flex_event.v1", alias="schema"
    )
    id: DocumentId
    issued: UtcDatetime
    source: ShortText
    """Who asks: the DSO or market, e.g. `SSEN`, `Piclo Flex`."""
    group: Tags
    """Nodes whose tags include every one of these; empty selects every node."""
    direction: FlexDirection
    power_w: PositivePowerW
    """How much the group's net import must move, W."""
    start: UtcDatetime
    end: UtcDatetime
    price_p_per_kwh: Number | None = None
    status: FlexStatus | None = None

    def selects(self, tags: Mapping[str, str]) -> bool:
        """Whether a node with `tags` belongs to the event's group."""
        return all(tags.get(key) == value for key, value in self.group.items())

    def semantic_problems(self) -> list[Problem]:
        if self.end <= self.start:
            return [Problem("end", "must be after start")]
        return []
