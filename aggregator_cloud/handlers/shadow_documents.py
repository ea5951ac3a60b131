"""Shadow `update/documents` messages into the fleet registry.

* Classic shadow (`$aws/things/<node>/shadow/update/documents`): `reported.node` is the node
  descriptor, `reported.telemetry` the latest snapshot, `reported.link` the node's report on
  its link (samples buffered, dropped, lost; its last storage error).
* Named shadow `plan` (`$aws/things/<node>/shadow/name/plan/update/documents`): `desired.plan`
  is the plan the aggregator wrote, `reported.plan` the node's acknowledgement.

The event is the documents message plus `thing_name` (on AWS: `SELECT *, topic(3) AS
thing_name`). Each document is checked on its own: a bad one is refused with its reasons and
the others are still recorded. The current state is recorded whole, newest wins, so a missed
message is made up for by the next one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fractal.protocol import Document, NodeDescriptor, Plan, PlanAck, TelemetrySnapshot, parse
from pydantic import (
    BaseModel,
    ConfigDict,
    NonNegativeInt,
    StringConstraints,
    ValidationError,
)

from aggregator_cloud.store import FleetRegistry, PlanHistory

from .result import HandlerResult, describe, mismatch, thing_name


def handle_shadow_documents(
    event: Mapping[str, Any], registry: FleetRegistry, now: datetime | None = None
) -> HandlerResult:
    """Classic shadow: record the node's descriptor and latest telemetry snapshot."""
    opened = _open(event)
    if isinstance(opened, HandlerResult):
        return opened
    node, state, tally = opened
    descriptor = tally.document(state.reported, "reported", "node", NodeDescriptor)
    if descriptor is not None and tally.same_node("reported.node", descriptor.node):
        registry.record_descriptor(descriptor)
        tally.stored += 1
    snapshot = tally.document(state.reported, "reported", "telemetry", TelemetrySnapshot)
    if snapshot is not None and tally.same_node("reported.telemetry", snapshot.node):
        tally.count(registry.record_snapshot(snapshot))
    link = tally.link_report(state.reported.get("link"))
    if link is not None:
        registry.record_link_state(node, link.model_dump())
        tally.stored += 1
    _mark_seen_if_reported(registry, node, state, now)
    return tally.result()


def handle_plan_documents(
    event: Mapping[str, Any], registry: FleetRegistry, now: datetime | None = None
) -> HandlerResult:
    """Named shadow `plan`: record the plan written to the node and the node's answer."""
    opened = _open(event)
    if isinstance(opened, HandlerResult):
        return opened
    node, state, tally = opened
    plan = tally.document(state.desired, "desired", "plan", Plan)
    if plan is not None and tally.same_node("desired.plan", plan.node):
        registry.record_desired_plan(node, plan.id, plan.expiry)
        if isinstance(registry, PlanHistory):
            registry.record_plan(plan)
        tally.stored += 1
    ack = tally.document(state.reported, "reported", "plan", PlanAck)
    if ack is not None:
        tally.count(registry.record_plan_ack(node, ack))
    _mark_seen_if_reported(registry, node, state, now)
    return tally.result()


def _open(event: Mapping[str, Any]) -> tuple[str, _State, _Tally] | HandlerResult:
    """The node and state of a documents message, or the result refusing it."""
    node, problems = thing_name(event)
    if node is None:
        return HandlerResult(None, problems=problems)
    state = _State.of(event)
    if state.problem:
        return HandlerResult(node, problems=(state.problem,))
    return node, state, _Tally(node)


class LinkReport(BaseModel):
    """`reported.link`, written by the node's link next to its snapshot. Fields added by a
    newer node are ignored, so an old aggregator keeps reading what it knows."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    buffered: NonNegativeInt | None = None
    """Samples the node holds that the aggregator has not acknowledged yet."""
    dropped: NonNegativeInt | None = None
    """Samples dropped, oldest first, because the node's buffer was full (ever)."""
    lost: NonNegativeInt | None = None
    """Samples lost because the node's storage failed (since it started)."""
    storage_error: Annotated[str, StringConstraints(max_length=256)] | None = None


class _State:
    """The parts of a documents message the handlers read."""

    def __init__(
        self,
        desired: Mapping[str, Any],
        reported: Mapping[str, Any],
        reported_before: Mapping[str, Any] | None,
        timestamp: datetime | None,
        problem: str | None = None,
    ) -> None:
        self.desired = desired
        self.reported = reported
        self.reported_before = reported_before
        self.timestamp = timestamp
        self.problem = problem

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> _State:
        current = _mapping(event.get("current"))
        state = _mapping(current.get("state")) if current is not None else None
        if state is None:
            return cls({}, {}, None, None, "current.state: expected an object")
        desired, reported = state.get("desired") or {}, state.get("reported") or {}
        for section, value in (("desired", desired), ("reported", reported)):
            if not isinstance(value, Mapping):
                return cls({}, {}, None, None, f"current.state.{section}: expected an object")
        return cls(desired, reported, _previous_reported(event), _timestamp(event))


def _mapping(value: object) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _previous_reported(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    previous = _mapping(event.get("previous"))
    state = _mapping(previous.get("state")) if previous is not None else None
    if state is None:
        return None
    return _mapping(state.get("reported")) or {}


def _timestamp(event: Mapping[str, Any]) -> datetime | None:
    """The message's `timestamp` (Unix seconds) when it is a plausible number."""
    value = event.get("timestamp")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _mark_seen_if_reported(
    registry: FleetRegistry, node: str, state: _State, now: datetime | None
) -> None:
    """The node was seen if it changed its reported state (the aggregator writes desired)."""
    if state.reported and state.reported != state.reported_before:
        registry.mark_seen(node, state.timestamp or now or datetime.now(UTC))


class _Tally:
    """Documents recorded, stale ones skipped and problems found, for one event."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.stored = 0
        self.stale = 0
        self.problems: list[str] = []

    def document[T: Document](
        self, section: Mapping[str, Any], name: str, key: str, model: type[T]
    ) -> T | None:
        value = section.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problems.append(f"{name}.{key}: expected an object")
            return None
        parsed = parse(model, value)
        self.problems.extend(describe(parsed.problems, place=f"{name}.{key}"))
        return parsed.document

    def link_report(self, value: object) -> LinkReport | None:
        if value is None:
            return None
        try:
            return LinkReport.model_validate(value)
        except ValidationError as error:
            self.problems.extend(
                f"reported.link{''.join(f'.{part}' for part in detail['loc'])}: {detail['msg']}"
                for detail in error.errors(include_url=False)
            )
            return None

    def same_node(self, place: str, inside: str) -> bool:
        if inside == self.node:
            return True
        self.problems.append(mismatch(place, inside, self.node))
        return False

    def count(self, kept: bool) -> None:
        if kept:
            self.stored += 1
        else:
            self.stale += 1

    def result(self) -> HandlerResult:
        return HandlerResult(
            self.node,
            stored=self.stored,
            duplicates=self.stale,
            problems=describe(self.problems),
        )
