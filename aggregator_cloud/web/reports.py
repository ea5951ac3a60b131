"""The report pages and downloads (aggregator_cloud/reports, docs/reports.md).

    POST /api/flex-events                     store a flexibility event (fractal.flex_event.v1)
    GET  /api/flex-events/{id}                the event and what the scheduler planned for it
                                              (`planning`: DATA/planning.json `events`, or null)
    GET  /reports/flexibility                 the delivery report: ?event=&nodes=a,b | tag=k=v |
                                              (none: the event's group), &resolution=10 (min),
                                              &discharge_only=1, &quantity=battery|site,
                                              &format=csv
    GET  /nodes/{node}/settlement?month=YYYY-MM[&format=csv]   behind-the-meter settlement,
                                              tariffs from DATA/settlement/{node}.json
    GET  /nodes/{node}/hydro?days=7           the hydro compliance view (operator)
    POST /nodes/{node}/hydro/share?days=7     a read-only link for the regulator that expires
    GET  /shared/hydro?token=...              the view through such a link (403 when expired
                                              or forged)
    GET  /nodes/{node}/export?format=csv|parquet   all the node's samples, streamed

With `retention_days`, samples older than that are deleted every hour."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, cast

import jinja2
import pandas as pd
from aiohttp import web
from fractal.protocol import to_jsonable
from markupsafe import Markup

from aggregator_cloud.reports import export, flexibility, hydro, links, settlement
from aggregator_cloud.reports.events import (
    EventConflict,
    InvalidEvent,
    parse_event,
    record_event,
    stored_event,
    stored_events,
)
from aggregator_cloud.store import SqliteStore

Clock = Callable[[], datetime]
_STATE: Final = web.AppKey("fractal_reports", dict)
SHARE_MAX_DAYS: Final = 90


def add_report_routes(
    app: web.Application,
    store: SqliteStore,
    data_dir: Path,
    clock: Clock = lambda: datetime.now(UTC),
    *,
    retention_days: float | None = None,
) -> None:
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app[_STATE] = {
        "store": store,
        "data_dir": data_dir,
        "clock": clock,
        "templates": templates,
    }
    app.router.add_post("/api/flex-events", post_flex_event)
    app.router.add_get("/api/flex-events/{event}", get_flex_event)
    app.router.add_get("/reports/flexibility", flexibility_report)
    app.router.add_get("/nodes/{node}/settlement", settlement_report)
    app.router.add_get("/nodes/{node}/hydro", hydro_page)
    app.router.add_post("/nodes/{node}/hydro/share", hydro_share)
    app.router.add_get("/shared/hydro", shared_hydro)
    app.router.add_get("/nodes/{node}/export", node_export)
    if retention_days is not None:
        days = retention_days

        async def retention(_: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(export.retention_job(store, days, clock=clock))
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        app.cleanup_ctx.append(retention)


def _state(request: web.Request) -> dict[str, Any]:
    return cast(dict[str, Any], request.app[_STATE])


def _store(request: web.Request) -> SqliteStore:
    return cast(SqliteStore, _state(request)["store"])


def _now(request: web.Request) -> datetime:
    return cast(Clock, _state(request)["clock"])()


def _render(request: web.Request, name: str, status: int = 200, **values: Any) -> web.Response:
    environment = cast(jinja2.Environment, _state(request)["templates"])
    html = environment.get_template(name).render(now=_now(request), **values)
    return web.Response(text=html, content_type="text/html", status=status)


def _csv(text: str, filename: str) -> web.Response:
    return web.Response(
        text=text,
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- flexibility -------------------------------------------------------------------------


async def post_flex_event(request: web.Request) -> web.Response:
    try:
        event = parse_event(await request.read())
        created = await asyncio.to_thread(record_event, _store(request), event)
    except InvalidEvent as error:
        return web.json_response({"error": str(error), "problems": error.problems}, status=422)
    except EventConflict as error:
        return web.json_response({"error": str(error)}, status=409)
    return web.json_response({"id": event.id, "created": created}, status=201 if created else 200)


async def get_flex_event(request: web.Request) -> web.Response:
    """The stored event and the scheduler's latest answer for it: the nodes planned, the
    requested and deliverable kW, per slot (null until the scheduler has planned it)."""
    event_id = request.match_info["event"]
    event = await asyncio.to_thread(stored_event, _store(request), event_id)
    if event is None:
        return web.json_response({"error": f"no flexibility event {event_id!r}"}, status=404)
    planned = await asyncio.to_thread(_planned_event, _state(request)["data_dir"], event_id)
    return web.json_response({"event": to_jsonable(event), "planning": planned})


def _planned_event(data_dir: Path, event_id: str) -> Any:
    """The event's answer in DATA/planning.json (the scheduler rewrites it whole after each
    dispatch); None when there is none or the file cannot be read."""
    try:
        status = json.loads((data_dir / "planning.json").read_text())
    except (OSError, ValueError):
        return None
    events = status.get("events") if isinstance(status, dict) else None
    return events.get(event_id) if isinstance(events, dict) else None


async def flexibility_report(request: web.Request) -> web.Response:
    store, query = _store(request), request.query
    events = await asyncio.to_thread(stored_events, store)
    if "event" not in query:
        return _render(
            request, "flexibility.html", events=events, report=None, error=None, csv_url=""
        )
    try:
        report_request = _report_request(store, query, events)
        report = await asyncio.to_thread(flexibility.build_report, store, report_request)
    except ValueError as error:  # NoBaseline included: say why, keep the form
        if query.get("format") == "csv":
            raise web.HTTPUnprocessableEntity(text=str(error)) from None
        return _render(
            request,
            "flexibility.html",
            status=422,
            events=events,
            report=None,
            error=str(error),
            csv_url="",
        )
    if query.get("format") == "csv":
        return _csv(report.csv(), f"flexibility-{report_request.event.id}.csv")
    csv_url = str(request.rel_url.update_query(format="csv"))
    return _render(
        request, "flexibility.html", events=events, report=report, error=None, csv_url=csv_url
    )


def _report_request(
    store: SqliteStore, query: Mapping[str, str], events: list[Any]
) -> flexibility.ReportRequest:
    event = stored_event(store, query["event"])
    if event is None:
        raise ValueError(f"no flexibility event {query['event']!r} is stored")
    if query.get("nodes"):
        nodes = tuple(node.strip() for node in query["nodes"].split(",") if node.strip())
    elif query.get("tag"):
        key, _, value = query["tag"].partition("=")
        nodes = tuple(record.node for record in store.nodes(tag=(key, value)))
    else:  # the portfolio: every node the event selects
        nodes = tuple(record.node for record in store.nodes() if event.selects(record.tags))
    try:
        minutes = int(query.get("resolution", "10"))
    except ValueError:
        raise ValueError("resolution must be whole minutes") from None
    quantity = query.get("quantity", "battery")
    if quantity not in flexibility.QUANTITIES:
        raise ValueError(f"quantity must be one of {', '.join(flexibility.QUANTITIES)}")
    return flexibility.ReportRequest(
        event,
        nodes,
        timedelta(minutes=minutes),
        discharge_only=query.get("discharge_only") in {"1", "true", "on"},
        quantity=cast(flexibility.Quantity, quantity),
        other_events=tuple(events),
    )


# --- settlement --------------------------------------------------------------------------


async def settlement_report(request: web.Request) -> web.Response:
    node = request.match_info["node"]
    try:
        month_start, month_end = _month(request.query.get("month", ""))
        tariffs = _tariffs(cast(Path, _state(request)["data_dir"]), node)
        table = await asyncio.to_thread(
            _settle, _store(request), node, month_start, month_end, tariffs
        )
    except (ValueError, settlement.SettlementError) as error:
        raise web.HTTPUnprocessableEntity(text=f"settlement of {node}: {error}") from None
    if request.query.get("format") == "csv":
        return _csv(settlement.billing_csv(table), f"settlement-{node}-{month_start:%Y-%m}.csv")
    statements = settlement.monthly_statements(table)
    return _render(request, "settlement.html", node=node, table=table, statements=statements)


def _month(text: str) -> tuple[datetime, datetime]:
    try:
        first = datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise ValueError(f"month must be YYYY-MM, not {text!r}") from None
    following = (first + timedelta(days=32)).replace(day=1)
    start = pd.Timestamp(first, tz=settlement.LONDON).tz_convert("UTC").to_pydatetime()
    end = pd.Timestamp(following, tz=settlement.LONDON).tz_convert("UTC").to_pydatetime()
    return start, end


def _tariffs(data_dir: Path, node: str) -> dict[str, Any]:
    path = data_dir / "settlement" / f"{node}.json"
    try:
        document = json.loads(path.read_text())
        bands = {
            name: {time.fromisoformat(at): Decimal(str(rate)) for at, rate in rates.items()}
            for name, rates in document["rates"].items()
        }
        missing = {"import", "export", "ppa"} - set(bands)
        if missing:
            raise ValueError(f"no {', '.join(sorted(missing))} rates")
        deemed = Fraction(str(document.get("deemed_fraction", "1/2")))
    except FileNotFoundError:
        raise ValueError(f"no tariffs: write them to {path} (docs/reports.md)") from None
    except (KeyError, TypeError, ValueError, InvalidOperation, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: {error}") from None
    return {"bands": bands, "deemed": deemed}


def _settle(
    store: SqliteStore, node: str, start: datetime, end: datetime, tariffs: dict[str, Any]
) -> pd.DataFrame:
    samples = store.samples(node, start - timedelta(days=1), end + timedelta(days=1), extra=True)
    counters = pd.json_normalize(
        [json.loads(text).get("energy", {}) if text else {} for text in samples["extra"]]
    )
    counters.index = samples.index
    for name in ("import_wh", "export_wh", "pv_wh", "battery_charge_wh", "battery_discharge_wh"):
        if name not in counters:
            counters[name] = 0.0  # a site without that meter
    counters = counters.dropna(how="all")
    registers = settlement.registers_from_counters(counters, start, end)
    index = pd.DatetimeIndex(registers.index)
    bands = tariffs["bands"]
    rates = pd.DataFrame(
        {
            "import_p_per_kwh": settlement.time_of_use(index, bands["import"]),
            "export_p_per_kwh": settlement.time_of_use(index, bands["export"]),
            "ppa_p_per_kwh": settlement.time_of_use(index, bands["ppa"]),
        },
        index=index,
    )
    return settlement.settle(registers, rates, tariffs["deemed"])


# --- hydro -------------------------------------------------------------------------------


async def hydro_page(request: web.Request) -> web.Response:
    return await _hydro(request, request.match_info["node"], shared=None)


async def hydro_share(request: web.Request) -> web.Response:
    node = request.match_info["node"]
    days = _days(request.query.get("days", "7"), SHARE_MAX_DAYS)
    key = await asyncio.to_thread(links.load_key, cast(Path, _state(request)["data_dir"]))
    expires = _now(request) + timedelta(days=days)
    token = links.sign(key, node, "hydro", expires)
    url = str(request.url.with_path("/shared/hydro").with_query(token=token))
    return _render(request, "hydro_share.html", node=node, url=url, expires=expires)


async def shared_hydro(request: web.Request) -> web.Response:
    key = await asyncio.to_thread(links.load_key, cast(Path, _state(request)["data_dir"]))
    try:
        shared = links.verify(key, request.query.get("token", ""), "hydro", _now(request))
    except links.LinkRefused as error:
        return _render(request, "link_refused.html", status=403, reason=str(error))
    return await _hydro(request, shared.node, shared=shared)


async def _hydro(request: web.Request, node: str, shared: links.SharedView | None) -> web.Response:
    days = _days(request.query.get("days", "7"), 31)
    end = _now(request)
    try:
        view = await asyncio.to_thread(
            hydro.build_compliance, _store(request), node, end - timedelta(days=days), end
        )
    except hydro.NotAHydro as error:
        raise web.HTTPNotFound(text=str(error)) from None
    charts = {name: json.dumps(figure) for name, figure in hydro.figures(view).items()}
    body = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in charts.items()) + "}"
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        body = body.replace(raw, escaped)
    return _render(
        request, "hydro.html", view=view, shared=shared, days=days, figures_json=Markup(body)
    )


def _days(text: str, most: int) -> int:
    try:
        days = int(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"days must be a whole number, not {text!r}") from None
    if not 1 <= days <= most:
        raise web.HTTPBadRequest(text=f"days must be 1 to {most}")
    return days


# --- export ------------------------------------------------------------------------------


async def node_export(request: web.Request) -> web.StreamResponse:
    node = request.match_info["node"]
    fmt = request.query.get("format", "csv")
    if fmt not in {"csv", "parquet"}:
        raise web.HTTPBadRequest(text="format must be csv or parquet")
    store = _store(request)
    no_samples = await asyncio.to_thread(export.sample_span, store, node) is None
    if no_samples and await asyncio.to_thread(store.node, node) is None:
        raise web.HTTPNotFound(text=f"no node {node!r}")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv" if fmt == "csv" else "application/vnd.apache.parquet",
            "Content-Disposition": f'attachment; filename="{node}.{fmt}"',
        }
    )
    await response.prepare(request)
    blocks = export.export_blocks(store, node, cast(export.Format, fmt))
    done = object()
    while (block := await asyncio.to_thread(next, blocks, done)) is not done:
        await response.write(cast(bytes, block))
    await response.write_eof()
    return response
