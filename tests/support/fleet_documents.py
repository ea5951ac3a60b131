"""Real protocol documents for aggregator tests, as the nodes and AWS IoT would send them.

Everything is built as JSON-ready dicts (what travels on the wire) and checked against the
protocol models, so a test never feeds a document the protocol itself would refuse by mistake.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fractal.protocol import NodeDescriptor, Plan, PlanAck, TelemetryBatch, TelemetrySnapshot, parse

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def reading(seq: int, seconds: float | None = None, **values: Any) -> dict[str, Any]:
    """A sample `seq`, at T0 + `seconds` (default: 10 s per seq) with power-flow values."""
    defaults = {"grid_w": 100.0 + seq, "pv_w": 2000.0, "battery_w": -500.0, "load_w": 1600.0}
    return {
        "seq": seq,
        "ts": ts(10 * seq if seconds is None else seconds),
        **defaults,
        **values,
    }


def batch(node: str, seq: int, samples: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    document = {
        "schema": "fractal.telemetry_batch.v1",
        "node": node,
        "seq": seq,
        "samples": list(samples),
    }
    assert parse(TelemetryBatch, document).ok, parse(TelemetryBatch, document).problems
    return document


def descriptor(
    node: str, name: str = "Home", tags: Mapping[str, str] | None = None, capacity_wh: int = 0
) -> dict[str, Any]:
    devices: list[dict[str, Any]] = []
    if capacity_wh:
        devices.append(
            {
                "id": "battery",
                "kind": "battery",
                "capabilities": ["balance", "charge", "discharge"],
                "envelope": {"capacity_wh": capacity_wh, "max_charge_w": 3000},
            }
        )
    document = {
        "schema": "fractal.node.v1",
        "node": node,
        "name": name,
        "tags": dict(tags or {}),
        "software": "0.1.0",
        "link": "local",
        "devices": devices,
    }
    assert parse(NodeDescriptor, document).ok, parse(NodeDescriptor, document).problems
    return document


def snapshot(node: str, seq: int, seconds: float | None = None, **values: Any) -> dict[str, Any]:
    document = {"schema": "fractal.telemetry.v1", "node": node, **reading(seq, seconds, **values)}
    assert parse(TelemetrySnapshot, document).ok, parse(TelemetrySnapshot, document).problems
    return document


def ack(plan_id: str, status: str, seconds: float, reason: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schema": "fractal.plan_ack.v1",
        "id": plan_id,
        "status": status,
        "ts": ts(seconds),
    }
    if reason is not None:
        document["reason"] = reason
    assert parse(PlanAck, document).ok, parse(PlanAck, document).problems
    return document


def plan(node: str, plan_id: str) -> dict[str, Any]:
    """A minimal valid plan: the battery balances for 48 half-hour slots from T0."""
    document = {
        "schema": "fractal.plan.v1",
        "id": plan_id,
        "node": node,
        "issued": ts(-60),
        "start": ts(0),
        "step": 1800,
        "slots": 48,
        "expiry": ts(86400),
        "source": "aggregator",
        "devices": {
            "battery": {
                "kind": "battery",
                "windows": [{"start": 0, "end": 48, "mode": "balance"}],
            }
        },
    }
    assert parse(Plan, document).ok, parse(Plan, document).problems
    return document


def documents_message(
    reported: Mapping[str, Any] | None = None,
    desired: Mapping[str, Any] | None = None,
    version: int = 2,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """A `.../shadow/update/documents` message: previous and current state, as AWS sends it."""
    state: dict[str, Any] = {}
    if desired is not None:
        state["desired"] = dict(desired)
    if reported is not None:
        state["reported"] = dict(reported)
    stamp = int(T0.timestamp()) + 600 if timestamp is None else timestamp
    return {
        "previous": {"state": {}, "metadata": {}, "version": version - 1},
        "current": {"state": state, "metadata": {}, "version": version},
        "timestamp": stamp,
        "clientToken": "token-1",
    }
