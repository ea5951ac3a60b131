"""PlanAck: the node's answer to a plan, in the named shadow `plan`, `reported.plan`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from .base import ACK_BUDGET, DEFER_SEMANTIC_CHECKS, Document, Problem, Record, shadow_size
from .types import DocumentId, PlanStatus, UtcDatetime

TEXT_MAX = 200
PATH_MAX = 128
IssueText = Annotated[str, StringConstraints(min_length=1, max_length=TEXT_MAX)]


class Issue(Record):
    """Where a plan was clamped or why it was rejected: a path into the plan and a message."""

    path: Annotated[str, StringConstraints(max_length=PATH_MAX)]
    message: IssueText


class PlanAck(Document):
    """The node's answer to the plan in `desired.plan`, written to `reported.plan`."""

    KIND: ClassVar[str] = "plan_ack"
    SCHEMA: ClassVar[str] = "fractal.plan_ack.v1"
    SHADOW_PLACE: ClassVar[tuple[str, str] | None] = ("reported", "plan")
    MAX_BYTES: ClassVar[int | None] = ACK_BUDGET

    schema_: Literal["fractal.plan_ack.v1"] = Field(default="fractal.plan_ack.v1", alias="schema")
    id: DocumentId | None = None
    """The plan's id; absent only when rejecting a plan without a valid one."""
    status: PlanStatus
    reason: IssueText | None = None
    """Required when rejected; optional context otherwise."""
    ts: UtcDatetime
    clamped: tuple[Issue, ...] = Field(default=(), max_length=16)
    """Parts the node clamped to its envelope (the rest runs as planned)."""
    issues: tuple[Issue, ...] = Field(default=(), max_length=16)
    """Why the plan was rejected, one entry per problem."""

    def semantic_problems(self) -> list[Problem]:
        found = []
        if self.status is PlanStatus.REJECTED and self.reason is None:
            found.append(Problem("reason", "is required when the plan is rejected"))
        if self.status is not PlanStatus.REJECTED and self.id is None:
            found.append(Problem("id", f"is required when the plan is {self.status.value}"))
        return found

    @classmethod
    def fitted(
        cls,
        *,
        plan_id: str | None,
        status: PlanStatus,
        ts: datetime,
        reason: str | None = None,
        clamped: Iterable[Problem] = (),
        issues: Iterable[Problem] = (),
    ) -> PlanAck:
        """An ack that always fits its budget, for a node to report whatever it found:
        long texts are shortened and surplus entries dropped (the reason counts them)."""
        kept_clamped = [_issue(problem) for problem in clamped]
        kept_issues = [_issue(problem) for problem in issues]
        dropped = max(0, len(kept_clamped) - 16) + max(0, len(kept_issues) - 16)
        kept_clamped, kept_issues = kept_clamped[:16], kept_issues[:16]
        if reason is None and status is PlanStatus.REJECTED:
            reason = kept_issues[0].message if kept_issues else "rejected"
        while True:
            ack = cls.model_validate(
                {
                    "id": plan_id,
                    "status": status,
                    "ts": ts,
                    "reason": _with_count(reason, dropped),
                    "clamped": tuple(kept_clamped),
                    "issues": tuple(kept_issues),
                },
                context={DEFER_SEMANTIC_CHECKS: True},
            )
            if shadow_size(ack) <= ACK_BUDGET or not (kept_clamped or kept_issues):
                break
            (kept_issues or kept_clamped).pop()
            dropped += 1
        if found := ack.semantic_problems():
            raise ValueError("; ".join(str(problem) for problem in found))
        return ack


def _with_count(reason: str | None, dropped: int) -> str | None:
    if not dropped:
        return None if reason is None else _shorten(reason, TEXT_MAX)
    note = f"{dropped} more not listed"
    if reason is None:
        return note
    return f"{_shorten(reason, TEXT_MAX - len(note) - 3)} ({note})"


def _issue(problem: Problem) -> Issue:
    message = _shorten(problem.message or "invalid", TEXT_MAX)
    return Issue(path=_shorten(problem.path, PATH_MAX), message=message)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
