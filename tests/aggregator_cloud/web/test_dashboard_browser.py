"""Headless Chromium loads the dashboards from a real aiohttp server on 127.0.0.1 (the serve
app's routes over a store seeded through the handlers): plotly draws every chart, the numbers
next to them are the samples' (computed here in plain Python), and the screenshot is a page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from aggregator_cloud.store import SqliteStore
from aggregator_cloud.views import load_intensity
from aggregator_cloud.web import add_routes
from tests.support import dashboard_fleet as fleet
from tests.support.headless_browser import Page, dump_dom, screenshot

GROUP_CHARTS = ("flow-now", "power", "demand-met", "pv-use", "carbon", "plan", "members", "peak")


@pytest.fixture
async def server(tmp_path: Path, socket_enabled: None) -> AsyncIterator[TestServer]:
    with SqliteStore(tmp_path / "fleet.sqlite") as store:
        fleet.seed(store)
        app = web.Application()
        intensity = load_intensity(fleet.write_intensity(tmp_path / "intensity.json"))
        add_routes(app, store, lambda: fleet.END, intensity=intensity)
        async with TestServer(app, host="127.0.0.1") as running:
            yield running


def kwh(wh: float) -> str:
    return f"{wh / 1000:,.2f}"


async def test_group_dashboard_in_a_browser(server: TestServer, tmp_path: Path) -> None:
    url = str(server.make_url("/groups/street/Elm%20Road"))
    nodes = fleet.members("Elm Road")
    reference = fleet.energy_wh(nodes)
    carbon = fleet.carbon_g(nodes)

    shown = Page.of(await dump_dom(url))

    for chart in GROUP_CHARTS:
        assert "js-plotly-plot" in shown.ids[f"chart-{chart}"]["class"], chart
        assert f"chart-{chart}" in shown.svg_in, chart  # plotly drew it
    assert shown.metrics["demand.pv_kwh"] == [kwh(reference["pv_home"])]
    assert shown.metrics["demand.battery_kwh"] == [kwh(reference["battery_home"])]
    assert shown.metrics["demand.grid_kwh"] == [kwh(reference["grid_home"])]
    assert shown.metrics["pv.exported_kwh"] == [kwh(reference["pv_export"])]
    assert shown.metrics["pv.battery_kwh"] == [kwh(reference["pv_battery"])]
    assert shown.metrics["carbon.avoided_kg"] == [f"{carbon['avoided'] / 1000:.2f} kg"]
    assert shown.metrics["member.demand_kwh"] == [
        kwh(fleet.energy_wh([node])["demand"]) for node in nodes
    ]
    grid = fleet.bucket_means(nodes, "grid")
    assert shown.metrics["peak.with_w"] == [f"{max(grid.values()):,.0f} W"]

    picture = await screenshot(url, tmp_path / "group.png", window=(1400, 2800))
    with Image.open(picture) as image:
        assert image.size == (1400, 2800)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None
    assert len(colours) > 50  # charts and text, not a blank page


async def test_node_dashboard_in_a_browser(server: TestServer) -> None:
    url = str(server.make_url("/nodes/elm-1?period=week"))
    reference = fleet.energy_wh(["elm-1"])

    shown = Page.of(await dump_dom(url))

    for chart in GROUP_CHARTS[:6]:
        assert f"chart-{chart}" in shown.svg_in, chart
    assert "chart-members" not in shown.ids
    assert shown.metrics["energy.import_kwh"] == [kwh(reference["import"])]
    assert shown.metrics["energy.export_kwh"] == [kwh(reference["export"])]
    last_bucket = [
        fleet.sample("elm-1", k)["soc_pct"] for k in range(fleet.SAMPLES - 30, fleet.SAMPLES)
    ]
    assert shown.metrics["now.soc_pct"] == [f"{sum(last_bucket) / 30:.0f} %"]
