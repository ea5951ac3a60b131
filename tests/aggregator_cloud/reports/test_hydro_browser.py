"""Headless Chromium opens the hydro compliance view through a shared link, as the regulator
would: plotly draws the three charts and the numbers beside them are the samples'."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fractal.protocol import Reading
from PIL import Image

from aggregator_cloud.reports import links
from aggregator_cloud.store import SqliteStore
from aggregator_cloud.web import add_routes
from aggregator_cloud.web.reports import add_report_routes
from tests.support.headless_browser import Page, dump_dom, screenshot

from .test_report_routes import NOW, _hydro_descriptor


@pytest.fixture
async def server(tmp_path: Path, socket_enabled: None) -> AsyncIterator[TestServer]:
    with SqliteStore(tmp_path / "fleet.sqlite3") as store:
        store.record_descriptor(_hydro_descriptor())
        start = NOW - timedelta(hours=6)
        samples = []
        for index in range(6 * 60):  # one a minute, silent for 10 minutes at 03:00
            if 180 <= index < 190:
                continue
            level = 1.85 if index in {30, 31} else 1.62
            devices = {
                "level_m": level,
                "flow_m3_s": 10.0,
                "level_setpoint_m": 1.6,
                "generator1_power_w": 21_000.0,
                "generator2_power_w": 9_000.0,
            }
            samples.append(
                Reading(
                    seq=index,
                    ts=start + timedelta(minutes=index),
                    hydro_w=30_000.0,
                    devices={"hydro": devices},
                )
            )
        store.add_samples("osney-lock", samples)
        app = web.Application()
        add_routes(app, store, lambda: NOW)  # the page loads plotly from /static
        add_report_routes(app, store, tmp_path, lambda: NOW)
        async with TestServer(app, host="127.0.0.1") as running:
            yield running


async def test_the_regulator_opens_the_shared_view(server: TestServer, tmp_path: Path) -> None:
    token = links.sign(links.load_key(tmp_path), "osney-lock", "hydro", NOW + timedelta(days=1))
    url = str(server.make_url("/shared/hydro").with_query(token=token, days="1"))

    shown = Page.of(await dump_dom(url))

    for chart in ("level", "flow", "generation"):
        assert "js-plotly-plot" in shown.ids[f"chart-{chart}"]["class"], chart
        assert f"chart-{chart}" in shown.svg_in, chart
    assert shown.metrics["out_of_band"] == ["2"]
    assert shown.metrics["band"] == ["1.5 to 1.8 m"]
    # silent: the 18 hours before the first sample and 11 minutes at 03:00 of 24 hours
    up = 100 * (1 - (18 * 60 + 11) / (24 * 60))
    assert shown.metrics["uptime_pct"] == [f"{up:.1f}"]
    assert "shared-note" in shown.ids
    picture = await screenshot(url, tmp_path / "hydro.png")
    with Image.open(picture) as image:
        assert image.size == (1400, 3000)
        assert len(image.getcolors(1_000_000) or []) > 10  # drawn charts, not a blank page
