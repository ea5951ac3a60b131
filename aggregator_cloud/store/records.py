"""What the store keeps about each node, and the storage interfaces the handlers write to.

The handlers depend only on the two protocols below, so the AWS Lambdas can back them with
DynamoDB/S3 while the local runtime uses `SqliteStore`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from fractal.protocol import NodeDescriptor, Plan, PlanAck, Reading, TelemetrySnapshot

PENDING = "pending"
"""Plan status while the node has not acknowledged the plan in `desired.plan` yet."""


@dataclass(frozen=True)
class Insertion:
    """What became of a batch of samples: stored, already there, or clashing with stored ones."""

    inserted: int
    duplicates: int
    conflicts: tuple[int, ...] = ()
    """Sequence numbers already stored with a different timestamp (the node reset its
    counter?); the stored sample is kept."""


@dataclass(frozen=True)
class PlanState:
    """The plan last written to a node and what the node last said about a plan."""

    desired_id: str | None = None
    desired_expiry: datetime | None = None
    ack_id: str | None = None
    ack_status: str | None = None
    ack_reason: str | None = None
    ack_ts: datetime | None = None

    @property
    def status(self) -> str | None:
        """The acknowledged status of the current plan, `pending` until the node answers."""
        if self.desired_id is not None and self.ack_id != self.desired_id:
            return PENDING
        return self.ack_status


@dataclass(frozen=True)
class NodeRecord:
    """One node of the fleet registry."""

    node: str
    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    link: str | None = None
    """How the node links to its aggregator (descriptor: standalone, local, aws)."""
    link_state: dict[str, Any] | None = None
    """The node's own report on its link (`reported.link`): samples buffered, dropped, lost,
    and its last storage error."""
    software: str | None = None
    descriptor: dict[str, Any] | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    snapshot: dict[str, Any] | None = None
    """The latest telemetry snapshot as JSON (absent fields left out)."""
    plan: PlanState = field(default_factory=PlanState)


class TelemetrySink(Protocol):
    """Where telemetry batches go."""

    def add_samples(
        self, node: str, samples: Sequence[Reading], seen_at: datetime | None = None
    ) -> Insertion:
        """Store samples, ignoring those whose (node, seq) is already stored; with `seen_at`,
        also mark the node seen then, in the same write."""

    def mark_seen(self, node: str, when: datetime) -> None:
        """The node was heard from at `when` (registers it if it is new)."""


class FleetRegistry(Protocol):
    """Where what nodes report in their shadows goes."""

    def record_descriptor(self, descriptor: NodeDescriptor) -> None:
        """Keep the node's descriptor and tags (registers the node if it is new)."""

    def record_snapshot(self, snapshot: TelemetrySnapshot) -> bool:
        """Keep the snapshot unless the stored one is newer (by `ts`); True if kept."""

    def record_link_state(self, node: str, state: Mapping[str, Any]) -> None:
        """The node's report on its link (`reported.link`), already validated."""

    def record_desired_plan(self, node: str, plan_id: str, expiry: datetime) -> None:
        """The plan the aggregator wrote to the node's `desired.plan`."""

    def record_plan_ack(self, node: str, ack: PlanAck) -> bool:
        """Keep the acknowledgement unless the stored one is newer (by `ts`); True if kept."""

    def mark_seen(self, node: str, when: datetime) -> None:
        """The node was heard from at `when` (registers it if it is new)."""


@runtime_checkable
class PlanHistory(Protocol):
    """A registry that also keeps every plan written to nodes (their expected trajectories),
    for the dashboards' plan-against-actual charts."""

    def record_plan(self, plan: Plan) -> None:
        """Keep the plan written to `plan.node` (a plan id already kept is left as it is)."""


class FleetStore(TelemetrySink, FleetRegistry, Protocol):
    """Both: what the local rules dispatcher hands every handler."""


class TransactionLost(RuntimeError):
    """The store undid the whole transaction an inner `atomic()` block was in (SQLite does so
    after a disk-full or I/O error): nothing written in it since it began is stored."""


class GroupedFleetStore(FleetStore, Protocol):
    """A FleetStore whose writes can be grouped: what the local rules dispatcher needs."""

    def atomic(self) -> AbstractContextManager[object]:
        """All or nothing. The outermost block is one transaction (one commit); a block inside
        it undoes only its own writes when it raises, or raises TransactionLost when the
        whole transaction was undone."""
