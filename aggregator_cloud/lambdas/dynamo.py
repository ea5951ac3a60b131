"""The fleet in DynamoDB: what the ingest Lambdas record and the API and the planner read.

Two tables, both keyed by the node id alone (`node`, type S, partition key; no sort key, no
GSI), on-demand billing:

* `FLEET_TABLE`, the registry: one item per node that has published a descriptor
  (`reported.node`). Attributes: `name`, `link`, `software`, `tags` (map), `descriptor` (map,
  the whole document). Written only when a descriptor changes, so a paginated Scan of it is
  the list of nodes to plan (`plannable_nodes`, `node_ids`).
* `LATEST_TABLE`, the hot state, written by every message: `snapshot` (map) and `snapshot_ts`,
  `latest_sample` (map) and `latest_seq` (the newest telemetry sample stored), `link_state`
  (map), `first_seen`/`last_seen`, and the plan: `plan_desired_id`, `plan_desired_expiry`,
  `plan_ack_id`, `plan_ack_status`, `plan_ack_reason`, `plan_ack_ts`.

Times are fixed-width UTC ISO-8601 strings (`aggregator_cloud.store.sqlite.iso`), so the
conditions "keep the newer one" are string comparisons DynamoDB evaluates itself: two Lambdas
recording the same node at once can never put an older state over a newer one.

Numbers: DynamoDB takes no Python floats. Documents are stored through JSON with floats parsed
as `Decimal` (`to_item`) and read back with integral numbers as `int` and the rest as `float`
(`from_item`), which the strict protocol models accept again. Tag groups (`?tag=key=value`)
are a Scan filter: fine for the API's pages, and nothing on the planning path needs them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from fractal.protocol import NodeDescriptor, PlanAck, Reading, TelemetrySnapshot, parse, to_jsonable

from aggregator_cloud.handlers.plan_dispatch import NodePlanningState
from aggregator_cloud.store import NodeRecord, PlanState
from aggregator_cloud.store.sqlite import iso

KEY: Final = "node"
"""The partition key of both tables (type S)."""
SCAN_PAGE: Final = 1000
"""Items per Scan request (a request also stops at 1 MB)."""


def to_item(value: Any) -> Any:
    """JSON-ready `value` as DynamoDB takes it: every float a Decimal (exact decimal text)."""
    return json.loads(json.dumps(value, allow_nan=False), parse_float=Decimal)


def from_item(value: Any) -> Any:
    """What DynamoDB returned as plain JSON values: Decimals to int when whole, else float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(key): from_item(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [from_item(item) for item in value]
    return value


class BadCursor(ValueError):
    """A page cursor that this API did not hand out."""


@dataclass(frozen=True)
class Page:
    records: list[NodeRecord]
    latest_samples: dict[str, dict[str, Any]]
    cursor: str | None
    """Pass back to get the next page; None on the last one."""


class DynamoFleet:
    """FleetRegistry and TelemetrySink's `mark_seen` (for the handlers), PlanningFleet (for
    `dispatch_plans`) and the API's queries, over the two tables."""

    def __init__(self, resource: Any, fleet_table: str, latest_table: str) -> None:
        """`resource` is `boto3.resource("dynamodb")`; the tables are named."""
        self._resource = resource
        self._fleet = resource.Table(fleet_table)
        self._latest = resource.Table(latest_table)

    # --- FleetRegistry -----------------------------------------------------------------------

    def record_descriptor(self, descriptor: NodeDescriptor) -> None:
        document = to_jsonable(descriptor)
        self._fleet.put_item(
            Item=to_item(
                {
                    KEY: descriptor.node,
                    "name": descriptor.name,
                    "link": descriptor.link.value,
                    "software": descriptor.software,
                    "tags": dict(descriptor.tags),
                    "descriptor": document,
                }
            )
        )

    def record_snapshot(self, snapshot: TelemetrySnapshot) -> bool:
        return self._set_if_newer(
            snapshot.node,
            {"snapshot": to_jsonable(snapshot)},
            order=("snapshot_ts", iso(snapshot.ts)),
        )

    def record_link_state(self, node: str, state: Mapping[str, Any]) -> None:
        self._set(node, {"link_state": dict(state)})

    def record_desired_plan(self, node: str, plan_id: str, expiry: datetime) -> None:
        self._set(node, {"plan_desired_id": plan_id, "plan_desired_expiry": iso(expiry)})

    def record_plan_ack(self, node: str, ack: PlanAck) -> bool:
        values = {
            "plan_ack_id": ack.id,
            "plan_ack_status": ack.status.value,
            "plan_ack_reason": ack.reason,
        }
        return self._set_if_newer(node, values, order=("plan_ack_ts", iso(ack.ts)))

    def mark_seen(self, node: str, when: datetime) -> None:
        """`last_seen` moves forward only; `first_seen` is set once."""
        seen = iso(when)
        later_already = self._latest.meta.client.exceptions.ConditionalCheckFailedException
        with contextlib.suppress(later_already):
            self._latest.update_item(
                Key={KEY: node},
                UpdateExpression="SET last_seen = :seen, "
                "first_seen = if_not_exists(first_seen, :seen)",
                ConditionExpression="attribute_not_exists(last_seen) OR last_seen < :seen",
                ExpressionAttributeValues={":seen": seen},
            )

    def record_latest_sample(self, node: str, sample: Reading) -> bool:
        """Keep `sample` as the node's newest unless a later seq is stored; True if kept."""
        return self._set_if_newer(
            node, {"latest_sample": to_jsonable(sample)}, order=("latest_seq", sample.seq)
        )

    # --- PlanningFleet -----------------------------------------------------------------------

    def planning_state(self, node: str) -> NodePlanningState | None:
        item = self._fleet.get_item(Key={KEY: node}).get("Item")
        if item is None:
            return None
        parsed = parse(NodeDescriptor, from_item(item["descriptor"]))
        if parsed.document is None:
            return None  # stored before a stricter protocol version: wait for a new one
        latest = self._latest_item(node)
        soc, at = _latest_soc(latest)
        return NodePlanningState(parsed.document, soc_pct=soc, soc_at=at)

    def plannable_nodes(self) -> list[str]:
        return sorted(self.node_ids())

    def node_ids(self) -> Iterator[str]:
        """Every node in the registry, read page by page (a Scan returns at most 1 MB)."""
        arguments: dict[str, Any] = {
            "ProjectionExpression": "#node",
            "ExpressionAttributeNames": {"#node": KEY},
            "Limit": SCAN_PAGE,
        }
        while True:
            response = self._fleet.scan(**arguments)
            for item in response.get("Items", []):
                yield str(item[KEY])
            last = response.get("LastEvaluatedKey")
            if last is None:
                return
            arguments["ExclusiveStartKey"] = last

    # --- the API's queries -------------------------------------------------------------------

    def record(self, node: str) -> NodeRecord | None:
        """The node as the fleet view shows it; None if neither table knows it."""
        registered = self._fleet.get_item(Key={KEY: node}).get("Item")
        latest = self._latest_item(node)
        if registered is None and latest is None:
            return None
        return _node_record(node, registered or {}, latest or {})

    def latest_sample(self, node: str) -> dict[str, Any] | None:
        item = self._latest_item(node) or {}
        sample = item.get("latest_sample")
        return None if sample is None else from_item(sample)

    def page(
        self, limit: int, cursor: str | None = None, tag: tuple[str, str] | None = None
    ) -> Page:
        """Up to `limit` registered nodes (fewer when a tag filter leaves some out), with
        their latest state, and the cursor of the next page."""
        arguments: dict[str, Any] = {"Limit": limit}
        if cursor is not None:
            arguments["ExclusiveStartKey"] = {KEY: _decode_cursor(cursor)}
        if tag is not None:
            arguments["FilterExpression"] = "tags.#key = :value"
            arguments["ExpressionAttributeNames"] = {"#key": tag[0]}
            arguments["ExpressionAttributeValues"] = {":value": tag[1]}
        response = self._fleet.scan(**arguments)
        registered = sorted(response.get("Items", []), key=lambda item: str(item[KEY]))
        latest = self._latest_items([str(item[KEY]) for item in registered])
        records = [
            _node_record(str(item[KEY]), item, latest.get(str(item[KEY]), {}))
            for item in registered
        ]
        samples = {
            node: from_item(item["latest_sample"])
            for node, item in latest.items()
            if "latest_sample" in item
        }
        last = response.get("LastEvaluatedKey")
        return Page(records, samples, None if last is None else _encode_cursor(str(last[KEY])))

    # --- helpers -----------------------------------------------------------------------------

    def _latest_item(self, node: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._latest.get_item(Key={KEY: node}).get("Item")
        return item

    def _latest_items(self, nodes: list[str]) -> dict[str, dict[str, Any]]:
        """LATEST_TABLE items of `nodes`, 100 keys per BatchGetItem, unprocessed keys retried."""
        found: dict[str, dict[str, Any]] = {}
        table = self._latest.name
        for start in range(0, len(nodes), 100):
            request: dict[str, Any] = {
                table: {"Keys": [{KEY: node} for node in nodes[start : start + 100]]}
            }
            while request:
                response = self._resource.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(table, []):
                    found[str(item[KEY])] = item
                request = response.get("UnprocessedKeys") or {}
        return found

    def _set(self, node: str, values: Mapping[str, Any]) -> None:
        names, updates = _assignments(values)
        self._latest.update_item(
            Key={KEY: node},
            UpdateExpression=updates,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=_values(values),
        )

    def _set_if_newer(
        self, node: str, values: Mapping[str, Any], order: tuple[str, str | int]
    ) -> bool:
        """Set `values` and the ordering attribute unless a later one is stored (ties win:
        the same message twice is recorded twice, harmlessly)."""
        attribute, position = order
        everything = {**values, attribute: position}
        names, updates = _assignments(everything)
        try:
            self._latest.update_item(
                Key={KEY: node},
                UpdateExpression=updates,
                ConditionExpression="attribute_not_exists(#order) OR #order <= :order",
                ExpressionAttributeNames={**names, "#order": attribute},
                ExpressionAttributeValues={**_values(everything), ":order": position},
            )
        except self._latest.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _assignments(values: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    """`SET #a0 = :a0, ...` with every attribute name a placeholder (some are reserved words)."""
    names = {f"#a{index}": name for index, name in enumerate(values)}
    sets = ", ".join(f"#a{index} = :a{index}" for index in range(len(values)))
    return names, f"SET {sets}"


def _values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {f":a{index}": to_item(value) for index, value in enumerate(values.values())}


def _latest_soc(item: Mapping[str, Any] | None) -> tuple[float | None, datetime | None]:
    """The newest known state of charge: from the snapshot or the latest sample."""
    found: list[tuple[datetime, float]] = []
    for key in ("snapshot", "latest_sample"):
        reading = from_item((item or {}).get(key) or {})
        soc, ts = reading.get("soc_pct"), reading.get("ts")
        if isinstance(soc, int | float) and isinstance(ts, str):
            found.append((datetime.fromisoformat(ts), float(soc)))
    if not found:
        return None, None
    at, soc = max(found)
    return soc, at


def _node_record(node: str, registered: Mapping[str, Any], latest: Mapping[str, Any]) -> NodeRecord:
    plain = from_item({**registered, **latest})
    return NodeRecord(
        node=node,
        name=plain.get("name"),
        tags=plain.get("tags") or {},
        link=plain.get("link"),
        link_state=plain.get("link_state"),
        software=plain.get("software"),
        descriptor=plain.get("descriptor"),
        first_seen=_time(plain.get("first_seen")),
        last_seen=_time(plain.get("last_seen")),
        snapshot=plain.get("snapshot"),
        plan=PlanState(
            desired_id=plain.get("plan_desired_id"),
            desired_expiry=_time(plain.get("plan_desired_expiry")),
            ack_id=plain.get("plan_ack_id"),
            ack_status=plain.get("plan_ack_status"),
            ack_reason=plain.get("plan_ack_reason"),
            ack_ts=_time(plain.get("plan_ack_ts")),
        ),
    )


def _time(text: object) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def _encode_cursor(node: str) -> str:
    return base64.urlsafe_b64encode(node.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        node = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor(f"cursor {cursor!r} is not one this API handed out") from None
    if not node:
        raise BadCursor(f"cursor {cursor!r} is not one this API handed out")
    return node
