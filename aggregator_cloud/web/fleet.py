"""The fleet page: every node's latest telemetry and plan status, and each node's last hour.

Routes (clear of the iot-data REST paths `/things/`, `/topics/`, `/api/things/`):

    GET /                                 the fleet table; `?tag=feeder=F12` filters it
    GET /nodes/{node}                     one node: descriptor, plan, latest values, last hour
    GET /groups/{key}/{value}             a tag group as one node: its members and summed hour
    GET /api/fleet                        the fleet table as JSON (same `?tag=`)
    GET /api/nodes/{node}/telemetry       samples as JSON; `?since=` and `?until=` (ISO 8601)
    GET /api/groups/{key}/{value}/telemetry   a tag group's summed telemetry; `?since=&step=`

The node and group pages open with the same dashboard (web/dashboards.py, `?period=`).

Server-rendered with Jinja2 (autoescaping on); the pages refresh themselves every 30 s."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import jinja2
import pandas as pd
from aiohttp import web

from aggregator_cloud.store import FIELDS, NodeRecord, SqliteStore
from aggregator_cloud.views import Subject

from .dashboards import add_dashboard_routes, dashboard_view, kwh

Clock = Callable[[], datetime]

STORE_KEY: Final = web.AppKey("fractal_fleet_store", SqliteStore)
CLOCK_KEY: Final[web.AppKey[Clock]] = web.AppKey("fractal_fleet_clock")
TEMPLATES_KEY: Final = web.AppKey("fractal_fleet_templates", jinja2.Environment)

RECENT: Final = timedelta(hours=1)
"""How far back the node page and the telemetry endpoint look by default."""
GROUP_STEP: Final = timedelta(minutes=5)
"""The group page's bucket: members report at different instants, so they are summed per step."""
MAX_SAMPLE_RANGE: Final = timedelta(days=2)
"""A node's samples per request: two days of 10-second samples are about 17 000 rows."""
MAX_GROUP_RANGE: Final = timedelta(days=31)
MAX_GROUP_BUCKETS: Final = 10_000
NO_VALUE: Final = "\u2013"
"""Shown for a value a node did not report (an en dash)."""


def add_routes(
    app: web.Application,
    store: SqliteStore,
    clock: Clock = lambda: datetime.now(UTC),
    *,
    intensity: pd.Series | None = None,
) -> None:
    """Serve the fleet page and its JSON endpoints from `app` (e.g. the iot-data REST app);
    `intensity`: the grid's carbon intensity for the dashboards (views.load_intensity)."""
    add_dashboard_routes(app, store, intensity)
    app[STORE_KEY] = store
    app[CLOCK_KEY] = clock
    app[TEMPLATES_KEY] = _templates()
    app.router.add_get("/", fleet_page)
    app.router.add_get("/nodes/{node}", node_page)
    app.router.add_get("/groups/{key}/{value}", group_page)
    app.router.add_get("/api/fleet", fleet_json)
    app.router.add_get("/api/nodes/{node}/telemetry", node_telemetry_json)
    app.router.add_get("/api/groups/{key}/{value}/telemetry", group_telemetry_json)


def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["watts"] = _watts
    environment.filters["percent"] = _percent
    environment.filters["when"] = _when
    environment.filters["segment"] = _path_segment
    environment.filters["kwh"] = kwh
    return environment


# --- what the pages and the JSON show ----------------------------------------------------


@dataclass(frozen=True)
class FleetRow:
    record: NodeRecord
    latest: Mapping[str, Any] | None
    """The newest of the shadow snapshot and the last stored sample."""
    age: timedelta | None
    """Time since the node was last heard from."""

    def as_json(self) -> dict[str, Any]:
        record, plan = self.record, self.record.plan
        return {
            "node": record.node,
            "name": record.name,
            "tags": record.tags,
            "link": record.link,
            "link_state": record.link_state,
            "last_seen": _iso(record.last_seen),
            "latest": _jsonable(dict(self.latest)) if self.latest else None,
            "plan": {
                "status": plan.status,
                "desired_id": plan.desired_id,
                "desired_expiry": _iso(plan.desired_expiry),
                "ack_id": plan.ack_id,
                "ack_status": plan.ack_status,
                "ack_reason": plan.ack_reason,
                "ack_ts": _iso(plan.ack_ts),
            },
        }


def fleet_rows(store: SqliteStore, tag: tuple[str, str] | None, now: datetime) -> list[FleetRow]:
    samples = store.latest_samples()
    return [_row(record, samples.get(record.node), now) for record in store.nodes(tag=tag)]


def _row(record: NodeRecord, sample: Mapping[str, Any] | None, now: datetime) -> FleetRow:
    age = None if record.last_seen is None else now - record.last_seen
    return FleetRow(record, _newest(record.snapshot, sample), age)


def _newest(
    snapshot: Mapping[str, Any] | None, sample: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    if snapshot is None:
        return sample
    parsed = {**snapshot, "ts": datetime.fromisoformat(snapshot["ts"])}
    if sample is None or parsed["ts"] >= sample["ts"]:
        return parsed
    return sample


def _tag_filter(request: web.Request) -> tuple[str, str] | None:
    text = request.query.get("tag", "").strip()
    if not text:
        return None
    key, separator, value = text.partition("=")
    if not separator or not key or not value:
        raise _bad_request(request, f"tag must be key=value (e.g. feeder=F12), not {text!r}")
    return key.strip(), value.strip()


def _bad_request(request: web.Request, message: str) -> web.HTTPBadRequest:
    if request.path.startswith("/api/"):
        return web.HTTPBadRequest(text=_dumps({"error": message}), content_type="application/json")
    return web.HTTPBadRequest(text=message)


def _record(request: web.Request) -> NodeRecord:
    node = request.match_info["node"]
    record = request.app[STORE_KEY].node(node)
    if record is None:
        message = f"no node {node!r} in the fleet"
        if request.path.startswith("/api/"):
            raise web.HTTPNotFound(text=_dumps({"error": message}), content_type="application/json")
        raise web.HTTPNotFound(text=message)
    return record


def _time_range(
    request: web.Request, now: datetime, longest: timedelta
) -> tuple[datetime, datetime]:
    """`since` (default an hour ago) and `until` (default now), at most `longest` apart."""
    since = _time_param(request, "since", now - RECENT)
    until = _time_param(request, "until", now)
    if until <= since:
        raise _bad_request(request, "until must be later than since")
    if until - since > longest:
        raise _bad_request(request, f"at most {longest.days} days per request")
    return since, until


def _time_param(request: web.Request, name: str, default: datetime) -> datetime:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _bad_request(request, f"{name} must be an ISO 8601 time, not {text!r}") from None
    if when.tzinfo is None:
        raise _bad_request(request, f"{name} needs a UTC offset (e.g. 2026-03-01T12:00:00Z)")
    return when


# --- handlers ----------------------------------------------------------------------------


async def fleet_page(request: web.Request) -> web.Response:
    store, now = request.app[STORE_KEY], request.app[CLOCK_KEY]()
    tag = _tag_filter(request)
    return _render(
        request,
        "fleet.html",
        rows=fleet_rows(store, tag, now),
        groups=store.tag_values(),
        selected="=".join(tag) if tag else "",
        now=now,
    )


async def node_page(request: web.Request) -> web.Response:
    store, now = request.app[STORE_KEY], request.app[CLOCK_KEY]()
    record = _record(request)
    samples = store.samples(record.node, now - RECENT, None)
    row = _row(record, store.latest_samples().get(record.node), now)
    view = await dashboard_view(request, store, Subject(node=record.node), now)
    return _render(
        request,
        "node.html",
        view=view,
        base_path=f"/nodes/{_path_segment(record.node)}",
        row=row,
        devices=(record.descriptor or {}).get("devices", []),
        samples=_sample_dicts(samples.iloc[::-1]),
        fields=FIELDS,
        now=now,
    )


async def group_page(request: web.Request) -> web.Response:
    store, now = request.app[STORE_KEY], request.app[CLOCK_KEY]()
    key, value = request.match_info["key"], request.match_info["value"]
    members = fleet_rows(store, (key, value), now)
    if not members:
        raise web.HTTPNotFound(text=f"no node is tagged {key}={value}")
    frame = store.group_telemetry(key, value, now - RECENT, now, GROUP_STEP)
    view = await dashboard_view(request, store, Subject(group=(key, value)), now)
    return _render(
        request,
        "group.html",
        view=view,
        base_path=f"/groups/{_path_segment(key)}/{_path_segment(value)}",
        key=key,
        value=value,
        rows=members,
        buckets=_sample_dicts(frame.iloc[::-1]),
        step_minutes=int(GROUP_STEP.total_seconds() // 60),
        fields=FIELDS,
        now=now,
    )


async def fleet_json(request: web.Request) -> web.Response:
    store, now = request.app[STORE_KEY], request.app[CLOCK_KEY]()
    rows = fleet_rows(store, _tag_filter(request), now)
    body = {"nodes": [row.as_json() for row in rows], "groups": store.tag_values()}
    return web.json_response(body, dumps=_dumps)


async def node_telemetry_json(request: web.Request) -> web.Response:
    store, now = request.app[STORE_KEY], request.app[CLOCK_KEY]()
    record = _record(request)
    since, until = _time_range(request, now, MAX_SAMPLE_RANGE)
    samples = store.samples(record.node, since, until)
    body = {"node": record.node, "samples": _sample_dicts(samples)}
    return web.json_response(body, dumps=_dumps)


async def group_telemetry_json(request: web.Request) -> web.Response:
    """A tag group as one node: the members' telemetry summed per `step` (seconds)."""
    store, now = request.app[STORE_KEY], request.app[CLOCK_KEY]()
    key, value = request.match_info["key"], request.match_info["value"]
    since, until = _time_range(request, now, MAX_GROUP_RANGE)
    step = _step_param(request)
    if (until - since) / step > MAX_GROUP_BUCKETS:
        raise _bad_request(request, f"at most {MAX_GROUP_BUCKETS} steps per request")
    frame = store.group_telemetry(key, value, since, until, step)
    body = {
        "group": {key: value},
        "step": int(step.total_seconds()),
        "samples": _sample_dicts(frame),
    }
    return web.json_response(body, dumps=_dumps)


def _step_param(request: web.Request) -> timedelta:
    text = request.query.get("step", "300")
    if not text.isdigit() or int(text) <= 0:
        raise _bad_request(request, f"step must be a positive number of seconds, not {text!r}")
    return timedelta(seconds=int(text))


def _render(request: web.Request, template: str, **context: Any) -> web.Response:
    page = request.app[TEMPLATES_KEY].get_template(template).render(**context)
    return web.Response(text=page, content_type="text/html")


# --- formatting --------------------------------------------------------------------------


def _sample_dicts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: `ts` as ISO text, missing values left out."""
    rows = []
    for ts, values in zip(frame.index, frame.to_dict("records"), strict=True):
        row: dict[str, Any] = {"ts": _iso(ts.to_pydatetime())}
        row.update(_jsonable(values))
        rows.append(row)
    return rows


def _jsonable(values: Mapping[Any, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in values.items():
        name = str(key)
        if isinstance(value, float) and math.isnan(value):
            continue
        if isinstance(value, datetime):
            clean[name] = _iso(value)
        elif hasattr(value, "item"):  # numpy scalars
            clean[name] = value.item()
        else:
            clean[name] = value
    return clean


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False)


def _path_segment(value: str) -> str:
    """`value` quoted for one URL path segment (a tag value may hold `/` or `?`)."""
    return quote(value, safe="")


def _watts(value: object) -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return NO_VALUE
    return f"{value:,.0f} W"


def _percent(value: object) -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return NO_VALUE
    return f"{value:.0f} %"


def _when(age: timedelta | None) -> str:
    """`12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`; `never`."""
    if age is None:
        return "never"
    seconds = max(0, int(age.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"
