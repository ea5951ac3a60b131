"""Helpers of the blueprints' tests: an automation made from a blueprint, moving the clock."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory, TickingDateTimeFactory
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    async_fire_time_changed,
    async_mock_service,
)

from custom_components.fractal_node.services import OVERRIDE_SCHEMA

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
BLUEPRINTS = REPOSITORY_ROOT / "blueprints" / "automation" / "fractal_node"
TIME_ZONE = "Europe/London"
AUTOMATION = "automation.under_test"


async def automation_from(hass: HomeAssistant, blueprint: str, **inputs: Any) -> None:
    """Set up one automation from `fractal_node/<blueprint>.yaml`, as the UI saves it; it must
    come up enabled (an automation whose blueprint or inputs are invalid is unavailable)."""
    config = {
        "id": "under_test",
        "alias": "Under test",
        "use_blueprint": {"path": f"fractal_node/{blueprint}.yaml", "input": inputs},
    }
    assert await async_setup_component(hass, "automation", {"automation": [config]})
    await hass.async_block_till_done()
    state = hass.states.get(AUTOMATION)
    assert state is not None
    assert state.state == "on", state


def capture_overrides(hass: HomeAssistant) -> list[ServiceCall]:
    """`fractal_node.override` as the integration registers it (its own schema), recording the
    calls an automation makes."""
    calls: list[ServiceCall] = async_mock_service(
        hass, "fractal_node", "override", schema=OVERRIDE_SCHEMA
    )
    return calls


def capture_notifications(hass: HomeAssistant, service: str = "notify") -> list[ServiceCall]:
    calls: list[ServiceCall] = async_mock_service(hass, "notify", service)
    return calls


async def move_to(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory | TickingDateTimeFactory,
    when: datetime,
) -> None:
    """Move the clock to `when` and run whatever was due by then."""
    freezer.move_to(when)
    async_fire_time_changed(hass, when)
    await hass.async_block_till_done()


async def set_state(hass: HomeAssistant, entity_id: str, state: Any, **attributes: Any) -> None:
    """A new state; attributes given before are kept, as a sensor keeps its unit."""
    earlier = hass.states.get(entity_id)
    kept = dict(earlier.attributes) if earlier is not None else {}
    hass.states.async_set(entity_id, str(state), kept | attributes)
    await hass.async_block_till_done()
