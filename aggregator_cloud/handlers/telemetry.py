"""Telemetry batches from `$aws/rules/fractal_telemetry/<node>` into the telemetry store.

On AWS the Basic Ingest rule `SELECT *, topic(1) AS thing_name` (the rule sees the topic without
its `$aws/rules/fractal_telemetry/` prefix) calls the Lambda with the
batch plus the node id from the topic; locally the rules dispatcher builds the same event."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fractal.protocol import TelemetryBatch, parse

from aggregator_cloud.store import TelemetrySink

from .result import THING_NAME, HandlerResult, describe, mismatch, thing_name


def handle_telemetry_batch(
    event: Mapping[str, Any], store: TelemetrySink, now: datetime | None = None
) -> HandlerResult:
    """Validate the batch, check it is the topic's node's, store its new samples.

    A refused batch stores nothing and says why; samples already stored are counted as
    duplicates, so a node replaying its buffer after an outage loses and doubles nothing."""
    node, problems = thing_name(event)
    if node is None:
        return HandlerResult(None, problems=problems)
    document = {key: value for key, value in event.items() if key != THING_NAME}
    parsed = parse(TelemetryBatch, document)
    if parsed.document is None:
        return HandlerResult(node, problems=describe(parsed.problems))
    batch = parsed.document
    if batch.node != node:
        return HandlerResult(node, problems=(mismatch("the batch", batch.node, node),))
    insertion = store.add_samples(node, batch.samples, seen_at=now or datetime.now(UTC))
    return HandlerResult(
        node,
        stored=insertion.inserted,
        duplicates=insertion.duplicates,
        conflicts=insertion.conflicts,
    )
