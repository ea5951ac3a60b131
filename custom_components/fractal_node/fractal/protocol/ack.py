"""PlanAck: the node's answer to a plan, in the named shadow `plan`, `reported.plan`."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from .base import SHADOW_STATE_LIMIT, Document, Problem, Record
from .types import DocumentId, PlanStatus, Text, UtcDatetime


class Issue(Record):
    """Where a plan was clamped or why it was rejected: a path into the plan and a message."""

    path: Annotated[str, StringConstraints(max_length=256)]
    message: Text


class PlanAck(Document):
    """The node's answer to the plan in `desired.plan`, written to `reported.plan`."""

    KIND: ClassVar[str] = "plan_ack"
    SCHEMA: ClassVar[str] = "fractal.plan_ack.v1"
    SHADOW_PLACE: ClassVar[tuple[str, str] | None] = ("reported", "plan")
    MAX_BYTES: ClassVar[int | None] = SHADOW_STATE_LIMIT

    schema_: Literal["fractal.plan_ack.v1"] = Field(default="fractal.plan_ack.v1", alias="schema")
    id: DocumentId
    """The plan's id."""
    status: PlanStatus
    reason: Text | None = None
    """Required when rejected; optional context otherwise."""
    ts: UtcDatetime
    clamped: tuple[Issue, ...] = Field(default=(), max_length=32)
    """Parts the node clamped to its envelope (the rest runs as planned)."""
    issues: tuple[Issue, ...] = Field(default=(), max_length=32)
    """Why the plan was rejected, one entry per problem (at most 32 are reported)."""

    def semantic_problems(self) -> list[Problem]:
        if self.status is PlanStatus.REJECTED and self.reason is None:
            return [Problem("reason", "is required when the plan is rejected")]
        return []
