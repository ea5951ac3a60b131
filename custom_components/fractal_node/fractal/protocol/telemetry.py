"""Telemetry: the latest snapshot (classic shadow) and batches of samples (telemetry topic)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import MESSAGE_LIMIT, TELEMETRY_BUDGET, Document, Problem, Record, join_path
from .types import (
    DeviceId,
    DocumentId,
    MeasuredW,
    MetricName,
    NodeId,
    NonNegMeasuredW,
    NonNegNumber,
    Number,
    Percent,
    Seq,
    Trajectory,
    UtcDatetime,
)


class EnergyCounters(Record):
    """Cumulative energy since the node started counting, Wh (never decreasing)."""

    import_wh: NonNegNumber | None = None
    export_wh: NonNegNumber | None = None
    pv_wh: NonNegNumber | None = None
    battery_charge_wh: NonNegNumber | None = None
    battery_discharge_wh: NonNegNumber | None = None
    load_wh: NonNegNumber | None = None
    ev_wh: NonNegNumber | None = None
    immersion_wh: NonNegNumber | None = None
    hydro_wh: NonNegNumber | None = None


class Reading(Record):
    """Powers at one instant, W; null or absent when unknown.

    Signs: `grid_w` > 0 imports, `battery_w` > 0 charges; the rest are >= 0."""

    seq: Seq
    """Increases with every reading the node takes; never reused, not even after a restart."""
    ts: UtcDatetime
    grid_w: MeasuredW | None = None
    pv_w: NonNegMeasuredW | None = None
    battery_w: MeasuredW | None = None
    load_w: NonNegMeasuredW | None = None
    ev_w: NonNegMeasuredW | None = None
    immersion_w: NonNegMeasuredW | None = None
    hydro_w: NonNegMeasuredW | None = None
    soc_pct: Percent | None = None
    energy: EnergyCounters | None = None
    devices: dict[DeviceId, dict[MetricName, Number]] | None = Field(default=None, max_length=32)
    """Per-device readings, metric names ending in their unit: `{"hydro": {"flow_m3_s": 1.2}}`."""


class PlanPosition(Record):
    """The plan a node is executing and the slot it is in."""

    id: DocumentId
    slot: Seq | None = None
    """None when the plan has not started yet or has ended."""


class TelemetrySnapshot(Reading, Document):
    """The latest reading, published in the classic shadow's `reported.telemetry`."""

    KIND: ClassVar[str] = "telemetry"
    SCHEMA: ClassVar[str] = "fractal.telemetry.v1"
    SHADOW_PLACE: ClassVar[tuple[str, str] | None] = ("reported", "telemetry")
    MAX_BYTES: ClassVar[int | None] = TELEMETRY_BUDGET

    schema_: Literal["fractal.telemetry.v1"] = Field(default="fractal.telemetry.v1", alias="schema")
    node: NodeId
    plan: PlanPosition | None = None
    deviations: tuple[Trajectory, ...] = ()
    """Expected trajectories the node is currently outside the plan's tolerance of."""

    def semantic_problems(self) -> list[Problem]:
        seen: set[Trajectory] = set()
        found: list[Problem] = []
        for index, deviation in enumerate(self.deviations):
            if deviation in seen:
                found.append(Problem(join_path("deviations", index), "listed twice"))
            seen.add(deviation)
        return found


class TelemetryBatch(Document):
    """Samples published on `$aws/rules/fractal_telemetry/<node>`, one MQTT message each."""

    KIND: ClassVar[str] = "telemetry_batch"
    SCHEMA: ClassVar[str] = "fractal.telemetry_batch.v1"
    MAX_BYTES: ClassVar[int | None] = MESSAGE_LIMIT

    schema_: Literal["fractal.telemetry_batch.v1"] = Field(
        default="fractal.telemetry_batch.v1", alias="schema"
    )
    node: NodeId
    seq: Seq
    """The batch's own number: a re-sent batch keeps it, with exactly the same samples."""
    samples: tuple[Reading, ...] = Field(min_length=1)

    def semantic_problems(self) -> list[Problem]:
        found: list[Problem] = []
        for index in range(1, len(self.samples)):
            previous, sample = self.samples[index - 1], self.samples[index]
            if sample.seq <= previous.seq:
                found.append(
                    Problem(
                        join_path("samples", index, "seq"),
                        f"must be greater than the previous sample's ({previous.seq})",
                    )
                )
            if sample.ts < previous.ts:
                found.append(
                    Problem(
                        join_path("samples", index, "ts"),
                        "must not be earlier than the previous sample's",
                    )
                )
        return found
