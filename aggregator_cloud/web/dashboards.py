"""The dashboard shown on the node and group pages: period picker, charts and their numbers.

    GET /nodes/{node}?period=day|week|custom&start=YYYY-MM-DD&end=YYYY-MM-DD
    GET /groups/{key}/{value}?period=...      the same dashboard for a tag group
    GET /static/plotly.min.js                 plotly's offline bundle, from its wheel (no CDN)

The figures are plotly JSON embedded in the page and drawn by `Plotly.newPlot`; every number a
chart shows is also written as text next to it. Computed off the event loop (a large group's
first refresh may fold many samples)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Final

import pandas as pd
from aiohttp import web
from markupsafe import Markup

from aggregator_cloud.store import SqliteStore
from aggregator_cloud.views import Dashboard, Period, Subject, build_dashboard, install, refresh
from aggregator_cloud.views.figures import figures

_LOGGER = logging.getLogger(__name__)

INTENSITY_KEY: Final[web.AppKey[pd.Series | None]] = web.AppKey("fractal_grid_intensity")
REFRESH_EVERY: Final = 60.0
"""Seconds between background rollup refreshes, so pending samples never pile up."""
PLOTLY_JS: Final = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


@dataclass(frozen=True)
class DashboardView:
    """What the dashboard template needs."""

    board: Dashboard
    period_name: str
    start_text: str
    end_text: str
    figures_json: Markup


def add_dashboard_routes(
    app: web.Application, store: SqliteStore, intensity: pd.Series | None
) -> None:
    """Install the rollup in the store, serve plotly's bundle, refresh in the background."""
    install(store)
    app[INTENSITY_KEY] = intensity
    app.router.add_get("/static/plotly.min.js", plotly_js)

    async def refresher(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_refresh_forever(store), name="fractal views refresh")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(refresher)


async def _refresh_forever(store: SqliteStore) -> None:
    while True:
        await asyncio.sleep(REFRESH_EVERY)
        try:
            await asyncio.to_thread(refresh, store)
        except Exception:  # the next page view or round tries again
            _LOGGER.exception("rollup refresh failed")


async def plotly_js(_: web.Request) -> web.FileResponse:
    return web.FileResponse(PLOTLY_JS, headers={"Cache-Control": "max-age=86400"})


async def dashboard_view(
    request: web.Request, store: SqliteStore, subject: Subject, now: datetime
) -> DashboardView:
    """Build the dashboard for the request's period; bad input is a 400 saying why."""
    name, period = _period(request, now)
    board = await asyncio.to_thread(
        build_dashboard, store, subject, period, now=now, intensity=request.app[INTENSITY_KEY]
    )
    last_day = period.end - timedelta(seconds=1)
    return DashboardView(
        board,
        name,
        period.start.date().isoformat(),
        last_day.date().isoformat(),
        _script_json(figures(board)),
    )


def _period(request: web.Request, now: datetime) -> tuple[str, Period]:
    name = request.query.get("period", "day")
    try:
        if name != "custom":
            return name, Period.of(name, now)
        start = _day(request.query.get("start"), "start")
        end = _day(request.query.get("end"), "end") + timedelta(days=1)
        return name, Period.of(name, now, start, end)
    except ValueError as error:
        raise web.HTTPBadRequest(text=str(error)) from None


def _day(text: str | None, name: str) -> datetime:
    if not text:
        raise ValueError(f"a custom period needs {name} (YYYY-MM-DD)")
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise ValueError(f"{name} must be a date YYYY-MM-DD, not {text!r}") from None
    return datetime.combine(day, time(), UTC)


def _script_json(charts: Mapping[str, str]) -> Markup:
    """One JSON object of figures, safe inside <script>: no `<`, `>` or `&` left raw."""
    body = ",".join(f"{json.dumps(name)}:{figure}" for name, figure in charts.items())
    text = "{" + body + "}"
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return Markup(text)  # escaped above for a script element


def kwh(value_wh: Any) -> str:
    """Energy as kWh text with two decimals."""
    if not isinstance(value_wh, int | float):
        return "\u2013"
    return f"{value_wh / 1000:,.2f}"
