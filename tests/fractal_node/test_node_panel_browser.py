"""The sidebar panel's script in headless Chromium, against the real Home Assistant HTTP app of
the test harness: the panel module and plotly.js from the integration's static paths, the
numbers from the real dashboard view over the recorder. A small host page stands in for Home
Assistant's frontend shell: it creates the panel element and gives it `hass.callApi` (an
authenticated fetch, as the shell's does) and `panel.config.entry_id`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from homeassistant.components.http import StaticPathConfig
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from tests.fractal_node.test_node_panel import longhand, power_sensors, seed_history
from tests.support.headless_browser import Page, dump_dom

__all__ = ["power_sensors"]  # the fixture

HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>panel host</title></head><body>
<script type="module">
import "/fractal_node_static/fractal-dashboard.js";
const panel = document.createElement("fractal-node-dashboard");
panel.panel = {config: {entry_id: "ENTRY_ID"}, title: "Elm Road 12"};
document.body.appendChild(panel);
panel.hass = {
  callApi: async (method, path) => {
    const response = await fetch("/api/" + path, {
      method, headers: {Authorization: "Bearer TOKEN"},
    });
    if (!response.ok) throw new Error(`${response.status}`);
    return response.json();
  },
};
</script></body></html>
"""


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: None) -> None:
    """The recorder must start before Home Assistant (see test_node_panel)."""


async def test_the_panel_draws_the_views_numbers_in_a_browser(
    hass: HomeAssistant,
    power_sensors: dict[str, str],
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    tmp_path: Path,
) -> None:
    await seed_history(hass, power_sensors)
    host = tmp_path / "host.html"
    host.write_text(
        HOST_PAGE.replace("ENTRY_ID", power_sensors["entry_id"]).replace("TOKEN", hass_access_token)
    )
    await hass.http.async_register_static_paths(
        [StaticPathConfig("/fractal_test_host/host.html", str(host), False)]
    )
    client = await hass_client()

    shown = Page.of(await dump_dom(str(client.make_url("/fractal_test_host/host.html"))))

    for chart in ("chart-power", "chart-demand-met", "chart-pv-use"):
        assert chart in shown.svg_in, chart  # plotly drew it
    expected = longhand()
    assert shown.metrics["demand.pv_kwh"] == [f"{expected['pv_home'] / 1000:.2f}"]
    assert shown.metrics["demand.battery_kwh"] == [f"{expected['battery_home'] / 1000:.2f}"]
    assert shown.metrics["demand.grid_kwh"] == [f"{expected['grid_home'] / 1000:.2f}"]
    assert shown.metrics["pv.exported_kwh"] == [f"{expected['pv_export'] / 1000:.2f}"]
    assert shown.metrics["now.discharge_w"] == ["300 W"]
