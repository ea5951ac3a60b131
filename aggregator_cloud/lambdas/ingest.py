"""The ingest Lambdas: IoT topic rules -> the shared handlers -> DynamoDB and S3.

* `telemetry_handler`: rule on the Basic Ingest topic `$aws/rules/fractal_telemetry/<node>`
  (`SELECT *, topic(1) AS thing_name`: the rule sees the topic without its
  `$aws/rules/fractal_telemetry/` prefix). `handle_telemetry_batch` validates the batch; its
  samples go to S3 as Parquet (`history`), the newest one and `last_seen` to LATEST_TABLE.
* `shadow_handler`: rule on the classic shadow's `$aws/things/+/shadow/update/documents`
  (`SELECT *, topic(3) AS thing_name`). `handle_shadow_documents` records the descriptor
  (FLEET_TABLE), the snapshot and the link report (LATEST_TABLE); a node that asks for a new
  plan, reports a deviation or a new descriptor is queued for planning (`nodes_to_replan`).

Refused events are logged and kept in the history bucket (`refused`); an AWS error (throttled
beyond retries, a missing table) raises, so Lambda retries the event and then sends it to the
function's dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aggregator_cloud.handlers import (
    HandlerResult,
    handle_shadow_documents,
    handle_telemetry_batch,
)
from aggregator_cloud.handlers.plan_dispatch import nodes_to_replan

from . import environment
from .dynamo import DynamoFleet
from .fanout import enqueue
from .history import S3History
from .refused import keep_refused


def telemetry_handler(event: Any, context: object = None) -> dict[str, Any]:
    settings = environment.settings()
    bucket = environment.required(settings.history_bucket, "HISTORY_BUCKET")
    history = S3History(environment.s3(), bucket, fleet())
    now = datetime.now(UTC)
    result = handle_telemetry_batch(event, history, now=now)
    return finish("telemetry", event, result, now)


def shadow_handler(event: Any, context: object = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    result = handle_shadow_documents(event, fleet(), now=now)
    answer = finish("shadow", event, result, now)
    answer["replan"] = replan(event, now)
    return answer


def fleet() -> DynamoFleet:
    settings = environment.settings()
    return DynamoFleet(
        environment.dynamodb(),
        fleet_table=environment.required(settings.fleet_table, "FLEET_TABLE"),
        latest_table=environment.required(settings.latest_table, "LATEST_TABLE"),
    )


def finish(kind: str, event: object, result: HandlerResult, now: datetime) -> dict[str, Any]:
    """What the Lambda returns; a refused event (or part of one) is kept with its reasons."""
    answer = result.as_dict()
    if result.problems:
        bucket = environment.required(environment.settings().history_bucket, "HISTORY_BUCKET")
        answer["kept"] = keep_refused(
            environment.s3(), bucket, kind, event, problems=result.problems, now=now
        )
    return answer


def replan(event: object, now: datetime) -> list[str]:
    """Queue the nodes the shadow event says need a new plan now; return them."""
    if not isinstance(event, Mapping):
        return []
    nodes = list(nodes_to_replan(event))
    if nodes:
        settings = environment.settings()
        enqueue(
            environment.sqs(),
            environment.required(settings.plan_queue_url, "PLAN_QUEUE_URL"),
            nodes,
            batch_size=settings.plan_batch_size,
            reason="replan",
            requested=now,
        )
    return nodes
