"""The dashboard on the node and group pages, served by aiohttp from a store seeded through the
handlers: the period picker, bad input refused with a reason, plotly served from the wheel."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from aggregator_cloud.store import SqliteStore
from aggregator_cloud.views import load_intensity
from aggregator_cloud.web import add_routes
from aggregator_cloud.web.dashboards import PLOTLY_JS
from tests.support import dashboard_fleet as fleet
from tests.support.headless_browser import Page


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "fleet.sqlite") as seeded:
        fleet.seed(seeded)
        yield seeded


@pytest.fixture
async def client(
    store: SqliteStore, tmp_path: Path, socket_enabled: None
) -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    intensity = load_intensity(fleet.write_intensity(tmp_path / "intensity.json"))
    add_routes(app, store, lambda: fleet.END, intensity=intensity)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def page(client: TestClient[Any, Any], path: str) -> Page:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return Page.of(await response.text())


async def test_the_group_page_has_every_chart_and_its_numbers(
    client: TestClient[Any, Any],
) -> None:
    shown = await page(client, "/groups/street/Elm%20Road")
    reference = fleet.energy_wh(fleet.members("Elm Road"))

    charts = {name for name in shown.ids if name.startswith("chart-")}
    assert charts == {
        f"chart-{name}"
        for name in (
            "flow-now",
            "power",
            "demand-met",
            "pv-use",
            "carbon",
            "plan",
            "members",
            "peak",
        )
    }
    assert shown.metrics["demand.grid_kwh"] == [f"{reference['grid_home'] / 1000:,.2f}"]
    assert shown.metrics["member.import_kwh"] == [
        f"{fleet.energy_wh([node])['import'] / 1000:,.2f}" for node in fleet.members("Elm Road")
    ]


async def test_the_figures_are_plotly_json_for_each_chart(client: TestClient[Any, Any]) -> None:
    response = await client.get("/nodes/elm-1")
    text = await response.text()
    embedded = re.search(r'<script type="application/json" id="figures">(.*?)</script>', text, re.S)
    assert embedded is not None

    figures = json.loads(embedded.group(1))

    assert set(figures) == {"flow-now", "power", "demand-met", "pv-use", "carbon", "plan"}
    assert all({"data", "layout"} <= set(figure) for figure in figures.values())
    assert '<script src="/static/plotly.min.js"></script>' in text


async def test_a_week_and_a_custom_period(client: TestClient[Any, Any]) -> None:
    week = await page(client, "/nodes/elm-2?period=week")
    custom = await page(client, "/nodes/elm-2?period=custom&start=2026-03-01&end=2026-03-01")
    reference = fleet.energy_wh(["elm-2"])

    for shown in (week, custom):
        assert shown.metrics["demand.total_kwh"] == [f"{reference['demand'] / 1000:,.2f}"]
    assert week.ids["period-range"]  # the range is spelled out next to the picker


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("period=year", "period must be day, week or custom"),
        ("period=custom&start=2026-03-01", "needs end"),
        ("period=custom&start=01/03/2026&end=2026-03-01", "start must be a date YYYY-MM-DD"),
        ("period=custom&start=2026-03-02&end=2026-03-01", "end must be after its start"),
        ("period=custom&start=2026-01-01&end=2026-03-01", "at most 31 days"),
    ],
)
async def test_bad_periods_are_refused_saying_why(
    client: TestClient[Any, Any], query: str, message: str
) -> None:
    response = await client.get(f"/groups/street/Elm%20Road?{query}")

    assert response.status == 400
    assert message in await response.text()


async def test_plotly_is_served_from_its_wheel(client: TestClient[Any, Any]) -> None:
    response = await client.get("/static/plotly.min.js")

    assert response.status == 200
    body = await response.read()
    assert body == PLOTLY_JS.read_bytes()
    assert b"plotly.js" in body[:400]
