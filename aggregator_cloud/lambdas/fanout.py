"""Plan requests on the SQS plan queue: which nodes to plan, why, since when.

One message asks for up to `PLAN_BATCH_SIZE` nodes (`fractal.plan_request.v1`, JSON). The
schedule Lambda sends the whole fleet this way and the shadow Lambdas send single nodes that
asked for a new plan; the worker Lambda plans one message's nodes per `dispatch_plans` call.
Messages go out with SendMessageBatch, 10 per call; entries SQS fails (throttling, an
internal error) are sent again with back-off, and if some still fail the sender raises
`FanOutIncomplete` so its invocation fails and is retried (planning a node twice is harmless:
the newer plan replaces the older one).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from .environment import MAX_PLAN_BATCH_SIZE

LOGGER = logging.getLogger(__name__)

SCHEMA: Final = "fractal.plan_request.v1"
ENTRIES_PER_CALL: Final = 10
"""SendMessageBatch takes at most 10 messages."""
CALL_BYTES: Final = 256 * 1024
"""SendMessageBatch takes at most 256 KiB of message bodies per call."""
ATTEMPTS: Final = 5
BACKOFF_S: Final = 0.2

NodeKey = Annotated[str, Field(pattern=r"^[a-zA-Z0-9:_-]{1,128}$")]
Reason = Literal["schedule", "inputs", "replan"]


class PlanRequest(BaseModel):
    """One SQS message: plan these nodes."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["fractal.plan_request.v1"] = Field(default=SCHEMA, alias="schema")
    nodes: Annotated[tuple[NodeKey, ...], Field(min_length=1, max_length=MAX_PLAN_BATCH_SIZE)]
    reason: Reason
    requested: AwareDatetime
    """When the need to plan arose (the schedule's time, the node's message)."""

    def body(self) -> str:
        return self.model_dump_json(by_alias=True)


class BadPlanRequest(ValueError):
    """A queue message that is not a plan request; `problems` says why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_request(body: str) -> PlanRequest:
    try:
        return PlanRequest.model_validate_json(body)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in item['loc']) or 'message'}: {item['msg']}"
            for item in error.errors(include_url=False)
        ]
        raise BadPlanRequest(problems) from None


class FanOutIncomplete(RuntimeError):
    """Some plan requests could not be queued even after retries."""


def batches(nodes: Iterable[str], size: int) -> Iterator[tuple[str, ...]]:
    """`nodes` in tuples of at most `size`, in order."""
    batch: list[str] = []
    for node in nodes:
        batch.append(node)
        if len(batch) == size:
            yield tuple(batch)
            batch = []
    if batch:
        yield tuple(batch)


def enqueue(
    sqs: Any,
    queue_url: str,
    nodes: Iterable[str],
    *,
    batch_size: int,
    reason: Reason,
    requested: datetime,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Queue plan requests for `nodes`, `batch_size` per message; return the messages sent."""
    bodies = (
        PlanRequest(nodes=batch, reason=reason, requested=requested).body()
        for batch in batches(nodes, batch_size)
    )
    sent = 0
    for call in _calls(bodies):
        _send(sqs, queue_url, call, sleep)
        sent += len(call)
    return sent


def _calls(bodies: Iterable[str]) -> Iterator[list[str]]:
    """Bodies grouped for SendMessageBatch: 10 per call and within its size limit."""
    call: list[str] = []
    size = 0
    for body in bodies:
        length = len(body.encode())
        if call and (len(call) == ENTRIES_PER_CALL or size + length > CALL_BYTES):
            yield call
            call, size = [], 0
        call.append(body)
        size += length
    if call:
        yield call


def _send(sqs: Any, queue_url: str, bodies: list[str], sleep: Callable[[float], None]) -> None:
    pending = {str(index): body for index, body in enumerate(bodies)}
    for attempt in range(ATTEMPTS):
        entries = [{"Id": key, "MessageBody": body} for key, body in pending.items()]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        failed = response.get("Failed", [])
        pending = {item["Id"]: pending[item["Id"]] for item in failed}
        if not pending:
            return
        reasons = sorted({f"{item.get('Code')}: {item.get('Message')}" for item in failed})
        if any(item.get("SenderFault") for item in failed):
            raise FanOutIncomplete(f"SQS refused {len(pending)} plan requests: {reasons}")
        LOGGER.info("SQS failed %d plan requests (%s); sending again", len(pending), reasons)
        sleep(BACKOFF_S * 2**attempt)
    raise FanOutIncomplete(
        f"{len(pending)} plan requests still failed after {ATTEMPTS} attempts: {reasons}"
    )
