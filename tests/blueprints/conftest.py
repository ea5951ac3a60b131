"""Fixtures for the blueprints' tests: the real HA test harness with the repository's blueprint
files in its config dir, as a user who imported them has them."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant

from tests.blueprints.blueprint_support import BLUEPRINTS, TIME_ZONE


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/fractal_node (the real-node tests)."""


@pytest.fixture
async def blueprint_hass(hass: HomeAssistant, tmp_path: Path) -> AsyncIterator[HomeAssistant]:
    """`hass` with its own config dir holding blueprints/automation/fractal_node/*.yaml.

    Afterwards the automations are turned off, which detaches their clock triggers (the
    harness fails a test that leaves timers behind).
    """
    hass.config.config_dir = str(tmp_path)
    shutil.copytree(BLUEPRINTS, tmp_path / "blueprints" / "automation" / "fractal_node")
    await hass.config.async_set_time_zone(TIME_ZONE)
    yield hass
    if hass.services.has_service("automation", "turn_off"):
        await hass.services.async_call(
            "automation", "turn_off", {"entity_id": "all"}, blocking=True
        )
        await hass.async_block_till_done()
