"""What arrives in the `plan` named shadow's `desired.plan`, turned into the plan in force and the
acknowledgement for `reported.plan` (DESIGN §4).

A plan is taken whole or not at all: malformed, for another node, out of the installer's
envelope, ended or expired -> rejected/expired with every reason, and the plan already in force
keeps running. A valid new plan supersedes the one in force. The clock is passed in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

# Relative: the library is `fractal` here and `custom_components.fractal_node.fractal` in HA.
from ..protocol import Plan, PlanAck, PlanStatus, Problem, parse

EnvelopeCheck = Callable[[Plan], Sequence[Problem]]
"""The executor's check of a plan against the installer's safety envelope: the problems found."""
ClampCheck = Callable[[Plan], Sequence[Problem]]
"""The parts of an accepted plan the envelope clamps (`Envelope.clamped_parts`): the ack's
`clamped`, repeated in every acknowledgement of the plan while it is in force."""

_DOCUMENT_ID = re.compile(r"^[a-zA-Z0-9._:-]{1,64}$")


@dataclass(frozen=True)
class PlanDecision:
    """The outcome of a plan arriving, or of time passing."""

    ack: PlanAck
    """What to write to `reported.plan`."""
    in_force: Plan | None
    """The plan to execute from now on (None: the node's local default plan)."""
    superseded: PlanAck | None = None
    """The final word on the plan that was in force, if the new one replaced it."""


def check_plan(
    raw: object,
    *,
    node_id: str,
    now: datetime,
    envelope_check: EnvelopeCheck | None = None,
    clamp_check: ClampCheck | None = None,
) -> tuple[Plan | None, PlanAck]:
    """Validate a desired plan; the plan (None unless it may run) and its acknowledgement,
    listing what `clamp_check` says the envelope clamps."""
    parsed = parse(Plan, raw) if isinstance(raw, Mapping | str | bytes) else None
    if parsed is None or parsed.document is None:
        problems = parsed.problems if parsed else (Problem("", "a plan must be a JSON object"),)
        return None, rejection(plan_id(raw), problems, now)
    plan = parsed.document
    if plan.node != node_id:
        problem = Problem("node", f"the plan is for node {plan.node!r}, this is {node_id!r}")
        return None, rejection(plan.id, [problem], now)
    if now >= plan.expiry or now >= plan.end:
        return None, expiry_ack(plan, now)
    if envelope_check is not None and (outside := list(envelope_check(plan))):
        return None, rejection(plan.id, outside, now, prefix="outside the safety envelope: ")
    clamped = clamp_check(plan) if clamp_check is not None else ()
    return plan, make_ack(plan.id, status_at(plan, now), now, clamped=clamped)


def status_at(plan: Plan, now: datetime) -> PlanStatus:
    return PlanStatus.EXECUTING if now >= plan.start else PlanStatus.ACCEPTED


def expiry_ack(plan: Plan, now: datetime) -> PlanAck:
    if now >= plan.expiry:
        reason = f"expired at {plan.expiry.isoformat()}"
    else:
        reason = f"ended at {plan.end.isoformat()}"
    return make_ack(plan.id, PlanStatus.EXPIRED, now, reason=reason)


def plan_id(raw: object) -> str | None:
    """The id a broken plan claims, if it is a usable id; else None."""
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    candidate = raw.get("id") if isinstance(raw, Mapping) else None
    if isinstance(candidate, str) and _DOCUMENT_ID.match(candidate):
        return candidate
    return None


def rejection(
    plan_id: str | None, problems: Sequence[Problem], now: datetime, prefix: str = ""
) -> PlanAck:
    """A rejection naming every problem: joined in `reason` and one by one in `issues`
    (`PlanAck.fitted` shortens both to fit the shadow and counts what it left out)."""
    reason = prefix + "; ".join(str(problem) for problem in problems)
    return PlanAck.fitted(
        plan_id=plan_id, status=PlanStatus.REJECTED, ts=now, reason=reason, issues=problems
    )


def make_ack(
    plan_id: str,
    status: PlanStatus,
    now: datetime,
    *,
    reason: str | None = None,
    clamped: Sequence[Problem] = (),
) -> PlanAck:
    return PlanAck.fitted(plan_id=plan_id, status=status, ts=now, reason=reason, clamped=clamped)


class PlanInbox:
    """The plan in force and the acknowledgement last given, updated by arrivals and time."""

    def __init__(
        self,
        node_id: str,
        envelope_check: EnvelopeCheck | None = None,
        clamp_check: ClampCheck | None = None,
    ) -> None:
        self._node_id = node_id
        self._envelope_check = envelope_check
        self._clamp_check = clamp_check
        self._in_force: Plan | None = None
        self._in_force_status: PlanStatus | None = None
        self._in_force_clamped: list[Problem] = []
        self._last_ack: PlanAck | None = None
        self._last_raw: str | None = None

    @property
    def in_force(self) -> Plan | None:
        return self._in_force

    @property
    def last_ack(self) -> PlanAck | None:
        return self._last_ack

    def receive(self, raw: object, now: datetime) -> PlanDecision | None:
        """A desired plan arrived (delta or get). None when it is the one already answered
        (every reconnect `get`s the shadow again) or when there is no plan at all."""
        if raw is None:
            return None
        fingerprint = _fingerprint(raw)
        if fingerprint is not None and fingerprint == self._last_raw:
            return None
        self._last_raw = fingerprint
        plan, ack = check_plan(
            raw,
            node_id=self._node_id,
            now=now,
            envelope_check=self._envelope_check,
            clamp_check=self._clamp_check,
        )
        superseded = None
        if plan is not None:
            superseded = self._supersede(plan, now)
            self._in_force, self._in_force_status = plan, ack.status
            # Every acknowledgement of the plan repeats what is clamped (all of it: the ack
            # counts what does not fit).
            self._in_force_clamped = list(self._clamp_check(plan)) if self._clamp_check else []
        self._last_ack = ack
        return PlanDecision(ack, self._in_force, superseded)

    def _supersede(self, new: Plan, now: datetime) -> PlanAck | None:
        old = self._in_force
        if old is None:
            return None
        return make_ack(old.id, PlanStatus.SUPERSEDED, now, reason=f"superseded by {new.id}")

    def tick(self, now: datetime) -> PlanDecision | None:
        """Time passed: the plan in force starts executing, ends or expires. None: no change."""
        plan = self._in_force
        if plan is None:
            return None
        if now >= plan.expiry or now >= plan.end:
            self._in_force = self._in_force_status = None
            self._last_ack = expiry_ack(plan, now)
            return PlanDecision(self._last_ack, None)
        status = status_at(plan, now)
        if status is self._in_force_status:
            return None
        self._in_force_status = status
        self._last_ack = make_ack(plan.id, status, now, clamped=self._in_force_clamped)
        return PlanDecision(self._last_ack, plan)


def _fingerprint(raw: object) -> str | None:
    """Canonical JSON of what arrived, to recognise the same plan arriving again."""
    try:
        decoded = json.loads(raw) if isinstance(raw, str | bytes) else raw
        return json.dumps(decoded, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
