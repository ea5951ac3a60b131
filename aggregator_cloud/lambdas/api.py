"""The fleet API: API Gateway HTTP API (payload format 2.0) -> one Lambda.

Routes (authorisation is API Gateway's, IAM or a Cognito JWT authoriser, before this runs):

* `GET /fleet` — registered nodes with their latest state and plan status, the same rows as
  the local fleet page's `/api/fleet`. Query: `tag=key=value` (only that tag group),
  `limit` (1..200, default 100), `cursor` (from the previous page's `next`).
* `GET /nodes/{node}` — one node: the row, its descriptor and when it was first seen.
* `GET /nodes/{node}/plan` — the plan in the node's `plan` shadow (`desired.plan`) and its
  status (what the node acknowledged).
* `POST /flex-events` — a DSO flexibility event (`fractal.flex_event.v1`), validated by the
  protocol model, stored as `flex-events/<id>.json` in INPUTS_BUCKET (which starts a planning
  round). Sending the same event again is accepted (200); another event with a used id is a
  conflict (409). The write is conditional (`If-None-Match: *`), so two requests racing with
  one id store one event.

Errors are JSON `{"error": "...", "problems": [...]}` with 400 (bad JSON, bad query), 404
(unknown route or node), 405 (method), 409 (id in use), 413 (body too large) or 422 (a
document the protocol refuses).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from fractal.protocol import FlexibilityEvent, parse, to_jsonable

from aggregator_cloud.store import NodeRecord
from aggregator_cloud.web.fleet import FleetRow

from . import environment
from .dynamo import BadCursor, DynamoFleet
from .ingest import fleet
from .plans import FLEX_PREFIX

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 200
MAX_BODY_BYTES: Final = 64 * 1024
_NODE: Final = r"(?P<node>[a-zA-Z0-9:_-]{1,128})"


class ApiError(Exception):
    def __init__(self, status: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []


Route = Callable[[Mapping[str, Any], dict[str, str]], tuple[int, Any]]


def handler(event: Any, context: object = None) -> dict[str, Any]:
    try:
        status, body = _route(event)
    except ApiError as error:
        status, body = error.status, {"error": error.message, "problems": error.problems}
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body, allow_nan=False),
    }


def _route(event: Any) -> tuple[int, Any]:
    if not isinstance(event, Mapping):
        raise ApiError(400, "not an API Gateway HTTP API event")
    method, path = _method_and_path(event)
    for pattern, routes in ROUTES:
        match = re.fullmatch(pattern, path)
        if match is None:
            continue
        route = routes.get(method)
        if route is None:
            raise ApiError(405, f"{method} is not allowed on {path}; use {', '.join(routes)}")
        return route(event, match.groupdict())
    raise ApiError(404, f"no route {path}")


def _method_and_path(event: Mapping[str, Any]) -> tuple[str, str]:
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    if not isinstance(http, Mapping):
        raise ApiError(400, "not an API Gateway HTTP API (payload 2.0) event")
    path = str(event.get("rawPath") or http.get("path") or "/")
    stage = str(context.get("stage", "$default")) if isinstance(context, Mapping) else ""
    if stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]  # a named stage prefixes the path
    return str(http.get("method", "")).upper(), path.rstrip("/") or "/"


# --- routes --------------------------------------------------------------------------------


def get_fleet(event: Mapping[str, Any], _: dict[str, str]) -> tuple[int, Any]:
    query = event.get("queryStringParameters") or {}
    limit = _limit(query.get("limit"))
    tag = _tag(query.get("tag"))
    try:
        page = fleet().page(limit, cursor=query.get("cursor") or None, tag=tag)
    except BadCursor as error:
        raise ApiError(400, str(error)) from None
    now = datetime.now(UTC)
    rows = [_row(record, page.latest_samples.get(record.node), now) for record in page.records]
    return 200, {"nodes": [row.as_json() for row in rows], "next": page.cursor}


def get_node(_: Mapping[str, Any], path: dict[str, str]) -> tuple[int, Any]:
    store = fleet()
    record = _known(store, path["node"])
    row = _row(record, store.latest_sample(record.node), datetime.now(UTC))
    return 200, {
        **row.as_json(),
        "software": record.software,
        "first_seen": _iso(record.first_seen),
        "descriptor": record.descriptor,
    }


def get_node_plan(_: Mapping[str, Any], path: dict[str, str]) -> tuple[int, Any]:
    record = _known(fleet(), path["node"])
    row = _row(record, None, datetime.now(UTC)).as_json()
    return 200, {"node": record.node, "plan": _desired_plan(record.node), "status": row["plan"]}


def post_flex_event(event: Mapping[str, Any], _: dict[str, str]) -> tuple[int, Any]:
    parsed = parse(FlexibilityEvent, _json_body(event))
    if parsed.document is None:
        problems = [str(problem) for problem in parsed.problems]
        raise ApiError(422, "not a valid flexibility event", problems)
    document = json.dumps(to_jsonable(parsed.document), sort_keys=True)
    bucket = environment.required(environment.settings().inputs_bucket, "INPUTS_BUCKET")
    key = f"{FLEX_PREFIX}{parsed.document.id}.json"
    created = _stored_text(bucket, key) is None and _put_new(bucket, key, document)
    if not created and _stored_text(bucket, key) != document:
        raise ApiError(409, f"flexibility event {parsed.document.id!r} exists already")
    return (201 if created else 200), {"id": parsed.document.id, "stored": key, "created": created}


ROUTES: Final[tuple[tuple[str, dict[str, Route]], ...]] = (
    (r"/fleet", {"GET": get_fleet}),
    (rf"/nodes/{_NODE}", {"GET": get_node}),
    (rf"/nodes/{_NODE}/plan", {"GET": get_node_plan}),
    (r"/flex-events", {"POST": post_flex_event}),
)


# --- helpers -------------------------------------------------------------------------------


def _limit(text: object) -> int:
    if text is None:
        return DEFAULT_LIMIT
    try:
        limit = int(str(text))
    except ValueError:
        raise ApiError(400, f"limit must be a whole number, not {text!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _tag(text: object) -> tuple[str, str] | None:
    if not text:
        return None
    key, separator, value = str(text).partition("=")
    if not separator or not key or not value:
        raise ApiError(400, f"tag must be key=value, not {text!r}")
    return key, value


def _known(store: DynamoFleet, node: str) -> NodeRecord:
    record = store.record(node)
    if record is None:
        raise ApiError(404, f"no node {node!r}")
    return record


def _row(record: NodeRecord, sample: Mapping[str, Any] | None, now: datetime) -> FleetRow:
    """The fleet page's row: the newer of the shadow snapshot and the last stored sample."""
    candidates = [reading for reading in (record.snapshot, sample) if reading and "ts" in reading]
    latest = max(candidates, key=lambda reading: _time(reading["ts"]), default=None)
    if latest is not None:
        latest = {**latest, "ts": _time(latest["ts"])}
    age = None if record.last_seen is None else now - record.last_seen
    return FleetRow(record, latest, age)


def _desired_plan(node: str) -> Any:
    client = environment.iot_data()
    try:
        response = client.get_thing_shadow(thingName=node, shadowName="plan")
    except client.exceptions.ResourceNotFoundException:
        return None
    document = json.loads(response["payload"].read())
    return document.get("state", {}).get("desired", {}).get("plan")


def _json_body(event: Mapping[str, Any]) -> bytes:
    """The request body, checked to be JSON (what it holds is the route's to check)."""
    body = event.get("body")
    if body is None:
        raise ApiError(400, "the request has no body: send a JSON document")
    raw = str(body).encode()
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except binascii.Error:
            raise ApiError(400, "the body is not valid base64") from None
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the body is not JSON: {error}") from None
    return raw


def _stored_text(bucket: str, key: str) -> str | None:
    s3 = environment.s3()
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return body.decode()


def _put_new(bucket: str, key: str, text: str) -> bool:
    """Store `text` unless an object is under `key` already (S3 decides, atomically)."""
    s3 = environment.s3()
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=text.encode(),
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except s3.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "PreconditionFailed":
            return False
        raise
    return True


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat().replace("+00:00", "Z")
