"""The planning Lambdas: plan status, the schedule's fan-out through SQS, the plan worker.

* `status_handler`: rule on the plan shadow's `$aws/things/+/shadow/name/plan/update/documents`
  (`SELECT *, topic(3) AS thing_name`). `handle_plan_documents` records the plan written and
  the node's acknowledgement (LATEST_TABLE); a node whose plan expired is queued again.
* `schedule_handler`: an EventBridge schedule, or S3 ObjectCreated in INPUTS_BUCKET (a new
  tariff or forecast under `inputs/`, a flexibility event under `flex-events/`). A new inputs
  file is checked first: a broken one is refused (logged, nothing queued) and planning goes on
  with the files already there. Then every registered node (a paginated Scan of FLEET_TABLE)
  is queued, PLAN_BATCH_SIZE per message.
* `worker_handler`: SQS -> `dispatch_event_plans` for each message's nodes -> each node's
  `plan` shadow through `iot-data`. The flexibility events under `flex-events/` that have not
  ended are planned: a message holding a node of an event's group plans the whole group
  together for it (plans with source dso; the event's answer, what it delivers, is logged).
  A message is reported in `batchItemFailures` (and comes back after the visibility timeout,
  then goes to the dead-letter queue) when it is not a plan request, when the inputs cannot
  be read, or when a shadow write failed; a node the planner cannot plan (no descriptor,
  inputs not covering it) is logged and not retried. While an event is live, each message
  with a group member reads the fleet (a Scan) to find the whole group, and a group spread
  over several messages is planned once per message (the same plan, re-issued).

Shadow rate: AWS IoT allows 20 shadow requests per second per thing; the worker makes two per
node (read the plan shadow, write it), a node appears once per invocation (duplicates within
a batch are planned once) and throttled calls are retried with back-off by botocore.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final
from urllib.parse import unquote_plus

from fractal.planner import Planner
from fractal.protocol import FlexibilityEvent

from aggregator_cloud.handlers import handle_plan_documents
from aggregator_cloud.handlers.event_dispatch import dispatch_event_plans, with_event_groups
from aggregator_cloud.handlers.plan_dispatch import (
    PLAN_TIME_LIMIT_S,
    IotDataPlanShadows,
)
from aggregator_cloud.planning.inputs import InputsError, PlanningInputs, load_inputs, merge_inputs
from aggregator_cloud.reports.events import InvalidEvent, parse_event

from . import environment
from .fanout import BadPlanRequest, Reason, enqueue, parse_request
from .ingest import finish, fleet, replan

LOGGER = logging.getLogger(__name__)

INPUTS_PREFIX: Final = "inputs/"
FLEX_PREFIX: Final = "flex-events/"


def status_handler(event: Any, context: object = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    result = handle_plan_documents(event, fleet(), now=now)
    answer = finish("plan", event, result, now)
    answer["replan"] = replan(event, now)
    return answer


# --- schedule ------------------------------------------------------------------------------


def schedule_handler(event: Any, context: object = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    reason, problems = _trigger(event)
    if problems:
        LOGGER.error("planning not started: %s", problems)
        return {"queued_nodes": 0, "messages": 0, "problems": problems}
    settings = environment.settings()
    nodes = _Counted(fleet().node_ids())
    messages = enqueue(
        environment.sqs(),
        environment.required(settings.plan_queue_url, "PLAN_QUEUE_URL"),
        nodes,
        batch_size=settings.plan_batch_size,
        reason=reason,
        requested=now,
    )
    LOGGER.info("planning %d nodes in %d messages (%s)", nodes.count, messages, reason)
    return {"queued_nodes": nodes.count, "messages": messages, "problems": []}


@dataclass
class _Counted:
    """An iterable that counts what it yields (the fleet is streamed, never held whole)."""

    items: Iterator[str]
    count: int = 0

    def __iter__(self) -> Iterator[str]:
        for item in self.items:
            self.count += 1
            yield item


def _trigger(event: Any) -> tuple[Reason, list[str]]:
    """Why planning runs now, and why it must not (a broken inputs file)."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        return "schedule", []  # EventBridge: any scheduled event plans the fleet
    problems: list[str] = []
    for record in records:
        problems.extend(_object_problems(record))
    return "inputs", problems


def _object_problems(record: object) -> list[str]:
    """Problems of one S3 ObjectCreated record's object (only inputs files are read here)."""
    s3_part = record.get("s3") if isinstance(record, Mapping) else None
    try:
        key = unquote_plus(s3_part["object"]["key"])  # type: ignore[index]
    except (TypeError, KeyError):
        return [f"not an S3 event record: {record!r:.200}"]
    if not key.startswith(INPUTS_PREFIX):
        return []
    bucket = environment.required(environment.settings().inputs_bucket, "INPUTS_BUCKET")
    body = environment.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        load_inputs(body)
    except InputsError as error:
        return [f"s3://{bucket}/{key}: {problem}" for problem in error.problems]
    return []


# --- worker --------------------------------------------------------------------------------


@cache
def planner() -> Planner:
    """One planner per container: its HiGHS models stay warm between invocations."""
    return Planner(time_limit_s=PLAN_TIME_LIMIT_S)


@dataclass
class _RecordingShadows:
    """The plan shadows, remembering which nodes' writes failed (worth retrying)."""

    shadows: IotDataPlanShadows
    failed: set[str] = field(default_factory=set)

    def desired_plan(self, node: str) -> Mapping[str, Any] | None:
        try:
            return self.shadows.desired_plan(node)
        except Exception:
            self.failed.add(node)
            raise

    def write_plan(self, node: str, payload: str) -> None:
        try:
            self.shadows.write_plan(node, payload)
        except Exception:
            self.failed.add(node)
            raise


def worker_handler(event: Any, context: object = None) -> dict[str, Any]:
    """Plan each message's nodes; report the messages to receive again."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise TypeError("not an SQS event: no Records list")  # a wiring error, not data
    now = datetime.now(UTC)
    failures: list[dict[str, str]] = []
    inputs, problems = planning_inputs()
    events, event_problems = flex_events(now)
    problems.extend(event_problems)
    planned: set[str] = set()
    for record in records:
        message_id = str(record.get("messageId", "")) if isinstance(record, Mapping) else ""
        if not _plan_message(record, inputs, events, planned, now):
            failures.append({"itemIdentifier": message_id})
    if problems:
        LOGGER.error("planning inputs: %s", problems)
    return {"batchItemFailures": failures}


def _plan_message(
    record: object,
    inputs: PlanningInputs,
    events: list[FlexibilityEvent],
    planned: set[str],
    now: datetime,
) -> bool:
    """Plan one message's nodes; False if the message must be received again."""
    try:
        body = record.get("body") if isinstance(record, Mapping) else None
        request = parse_request(body if isinstance(body, str) else json.dumps(body))
    except BadPlanRequest as error:
        LOGGER.error("not a plan request (left for the dead-letter queue): %s", error.problems)
        return False
    nodes = [node for node in dict.fromkeys(request.nodes) if node not in planned]
    if events:  # a group is planned whole: its other nodes join this message's
        grouped = with_event_groups(nodes, events, fleet(), now)
        nodes = [node for node in grouped if node not in planned]
    shadows = _RecordingShadows(IotDataPlanShadows(environment.iot_data()))
    result = dispatch_event_plans(
        nodes,
        events=events,
        fleet=fleet(),
        inputs=inputs,
        shadows=shadows,
        now=now,
        planner=planner(),
    )
    planned.update(nodes)
    for answer in result.events:
        if answer.nodes:
            LOGGER.info("flexibility event %s: %s (%s)", answer.event, answer.status, answer)
    for node in result.nodes:
        if not node.written:
            LOGGER.warning("node %s not planned: %s", node.node, node.problems)
    if result.problems:
        LOGGER.error("planning failed (message retried): %s", result.problems)
    if shadows.failed:
        LOGGER.error("plan shadow calls failed for %s; message retried", sorted(shadows.failed))
        planned.difference_update(shadows.failed)
    return not shadows.failed and not result.problems


def planning_inputs() -> tuple[PlanningInputs, list[str]]:
    """Every `inputs/*.json` of INPUTS_BUCKET merged in key order (later ones override); a
    broken file is left out with its problems (the schedule refused it when it arrived)."""
    bucket = environment.required(environment.settings().inputs_bucket, "INPUTS_BUCKET")
    s3 = environment.s3()
    documents: list[PlanningInputs] = []
    problems: list[str] = []
    for key in sorted(_keys(s3, bucket, INPUTS_PREFIX)):
        if not key.endswith(".json"):
            continue
        try:
            documents.append(load_inputs(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        except InputsError as error:
            problems.extend(f"s3://{bucket}/{key} left out: {text}" for text in error.problems)
    return merge_inputs(documents), problems


def flex_events(now: datetime) -> tuple[list[FlexibilityEvent], list[str]]:
    """The flexibility events under `flex-events/` of INPUTS_BUCKET that have not ended; one
    that is not a valid event is left out with its problems (the API refuses those)."""
    bucket = environment.required(environment.settings().inputs_bucket, "INPUTS_BUCKET")
    s3 = environment.s3()
    events: list[FlexibilityEvent] = []
    problems: list[str] = []
    for key in sorted(_keys(s3, bucket, FLEX_PREFIX)):
        try:
            event = parse_event(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except InvalidEvent as error:
            problems.extend(f"s3://{bucket}/{key} left out: {text}" for text in error.problems)
            continue
        if event.end > now:
            events.append(event)
    return events, problems


def _keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield str(item["Key"])
