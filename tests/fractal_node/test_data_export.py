"""The householder's data export from Home Assistant: every recorded state of the node's
entities and every sample waiting in its link buffer (the real TelemetryBuffer file), as one CSV
from an authenticated HTTP view."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.fractal_node.const import DOMAIN
from custom_components.fractal_node.fractal.link.buffer import TelemetryBuffer
from custom_components.fractal_node.node_link import buffer_path
from tests.fractal_node.helpers import NODE_ID, node_entry


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: None) -> None:
    """The recorder starts before Home Assistant (as in test_node_panel)."""


@pytest.fixture
async def entry_id(hass: HomeAssistant, tmp_path: Path) -> str:
    hass.config.config_dir = str(tmp_path)
    assert await async_setup_component(hass, "http", {})
    assert await async_setup_component(hass, DOMAIN, {})
    entry = node_entry()
    entry.add_to_hass(hass)
    return entry.entry_id


def _rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == ["time", "source", "name", "value"]
    return list(reader)


async def test_export_has_every_recorded_state_and_buffered_sample(
    hass: HomeAssistant, entry_id: str, hass_client: ClientSessionGenerator
) -> None:
    registry = er.async_get(hass)
    entry = hass.config_entries.async_get_entry(entry_id)
    grid = registry.async_get_or_create(
        "sensor", DOMAIN, f"{NODE_ID}_grid_power", config_entry=entry
    ).entity_id
    soc = registry.async_get_or_create(
        "sensor", DOMAIN, f"{NODE_ID}_soc", config_entry=entry
    ).entity_id
    other = "sensor.not_the_nodes"
    start = dt_util.utcnow() - timedelta(hours=3)
    recorded: list[tuple[str, str, str]] = []
    for step in range(12):
        when = start + timedelta(minutes=15 * step)
        for entity_id, value in ((grid, str(100 * step - 300)), (soc, str(40 + step))):
            hass.states.async_set(entity_id, value, timestamp=when.timestamp())
            recorded.append((when.isoformat(), entity_id, value))
        hass.states.async_set(other, "1", timestamp=when.timestamp())
        await hass.async_block_till_done()
    await async_wait_recording_done(hass)

    path = buffer_path(hass, NODE_ID)
    path.parent.mkdir(parents=True)
    buffer = TelemetryBuffer(path)
    samples = [
        {"ts": "2026-05-01T10:00:00Z", "grid_w": 120.5, "energy": {"import_wh": 1000}},
        {"ts": "2026-05-01T10:00:10Z", "grid_w": -50.0, "devices": {"ev": {"current_a": 6}}},
    ]
    for sample in samples:
        buffer.append(sample)

    client = await hass_client()
    response = await client.get(f"/api/fractal_node/{entry_id}/export")
    buffer.close()

    assert response.status == 200, await response.text()
    assert response.headers["Content-Disposition"] == f'attachment; filename="{NODE_ID}.csv"'
    rows = _rows(await response.text())
    from_recorder = {
        (row["time"], row["name"], row["value"]) for row in rows if row["source"] == "recorder"
    }
    assert from_recorder == set(recorded)  # all of the node's, nothing of other entities
    assert sum(row["source"] == "recorder" for row in rows) == len(recorded)
    from_buffer = [
        (row["time"], row["name"], row["value"]) for row in rows if row["source"] == "buffer"
    ]
    assert from_buffer == [
        ("2026-05-01T10:00:00Z", "energy.import_wh", "1000"),
        ("2026-05-01T10:00:00Z", "grid_w", "120.5"),
        ("2026-05-01T10:00:00Z", "seq", "1"),
        ("2026-05-01T10:00:10Z", "devices.ev.current_a", "6"),
        ("2026-05-01T10:00:10Z", "grid_w", "-50.0"),
        ("2026-05-01T10:00:10Z", "seq", "2"),
    ]


async def test_export_refuses_unknown_entries_and_strangers(
    entry_id: str,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    client = await hass_client()
    missing = await client.get("/api/fractal_node/nope/export")
    assert missing.status == 404
    assert "no Fractal Node entry nope" in (await missing.json())["message"]
    stranger = await hass_client_no_auth()
    assert (await stranger.get(f"/api/fractal_node/{entry_id}/export")).status == 401
