"""`PlanningFleet` over the fleet registry the handlers fill (locally `SqliteStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fractal.protocol import NodeDescriptor, parse

from aggregator_cloud.handlers.plan_dispatch import NodePlanningState
from aggregator_cloud.store import NodeRecord


class NodeRecords(Protocol):
    """The registry queries this needs (SqliteStore has them)."""

    def node(self, node: str) -> NodeRecord | None: ...

    def nodes(self, tag: tuple[str, str] | None = None) -> list[NodeRecord]: ...


@dataclass(frozen=True)
class RegistryFleet:
    """Each node's stored descriptor and the state of charge of its latest snapshot."""

    records: NodeRecords

    def planning_state(self, node: str) -> NodePlanningState | None:
        record = self.records.node(node)
        return None if record is None else planning_state(record)

    def plannable_nodes(self) -> Sequence[str]:
        return [record.node for record in self.records.nodes() if record.descriptor is not None]


def planning_state(record: NodeRecord) -> NodePlanningState | None:
    """The record's descriptor (None if it has none, or one this version cannot read) and
    the latest SoC."""
    if record.descriptor is None:
        return None
    descriptor = parse(NodeDescriptor, record.descriptor).document
    if descriptor is None:
        return None
    snapshot = record.snapshot or {}
    soc = snapshot.get("soc_pct")
    ts = snapshot.get("ts")
    return NodePlanningState(
        descriptor,
        soc_pct=float(soc) if isinstance(soc, int | float) else None,
        soc_at=datetime.fromisoformat(ts) if isinstance(ts, str) else None,
    )
