"""The node's sensors as a user sees them: entity ids, states, units, categories, availability."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from custom_components.fractal_node.fractal.node import (
    LinkStatus,
    NodePlanStatus,
    NodeState,
    PowerFlows,
)
from tests.fractal_node.helpers import NODE_ID, local_settings, node_entry, setup_entry, until
from tests.support.certificates import CertificateAuthority, Issued

POWER_SENSORS = ("grid_power", "pv_power", "battery_power", "load_power")


async def test_a_standalone_node_shows_its_first_entities(
    hass: HomeAssistant, entity_registry: er.EntityRegistry
) -> None:
    entry = node_entry()
    await setup_entry(hass, entry)

    link = hass.states.get("sensor.elm_road_12_link_status")
    assert link is not None
    assert link.state == "standalone"
    assert link.attributes["device_class"] == "enum"
    assert link.attributes["options"] == [
        "standalone",
        "connecting",
        "connected",
        "disconnected",
        "error",
    ]
    assert link.attributes["friendly_name"] == "Elm Road 12 Link status"

    plan = hass.states.get("sensor.elm_road_12_plan_status")
    assert plan is not None
    assert plan.state == "none"
    assert plan.attributes["options"] == [status.value for status in NodePlanStatus]

    telemetry = hass.states.get("sensor.elm_road_12_last_telemetry")
    assert telemetry is not None
    assert telemetry.state == STATE_UNKNOWN
    assert telemetry.attributes["device_class"] == "timestamp"

    for key in POWER_SENSORS:
        state = hass.states.get(f"sensor.elm_road_12_{key}")
        assert state is not None, key
        assert state.state == STATE_UNAVAILABLE  # no device measures it yet
        assert state.attributes["device_class"] == "power"
        assert state.attributes["unit_of_measurement"] == "W"
        assert state.attributes["state_class"] == "measurement"

    entities = er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    assert {entity.unique_id: entity.entity_category for entity in entities} == {
        f"{NODE_ID}_link_status": EntityCategory.DIAGNOSTIC,
        f"{NODE_ID}_plan_status": EntityCategory.DIAGNOSTIC,
        f"{NODE_ID}_last_telemetry": EntityCategory.DIAGNOSTIC,
        f"{NODE_ID}_next_plan_change": None,
        f"{NODE_ID}_plan": None,  # the plan calendar
        f"{NODE_ID}_plan_source": None,
        f"{NODE_ID}_plan_expiry": EntityCategory.DIAGNOSTIC,
        **{f"{NODE_ID}_{key}": None for key in POWER_SENSORS},
    }
    assert all(entity.translation_key for entity in entities)
    assert all(entity.disabled_by is None for entity in entities)


async def test_a_linked_node_without_its_broker_says_disconnected_and_why(
    hass: HomeAssistant, local_ca: CertificateAuthority, node_credentials: Issued
) -> None:
    # Nothing listens on the helpers' broker address: the connection is refused.
    await setup_entry(hass, node_entry("local", **local_settings(local_ca, node_credentials)))

    def link_state() -> str | None:
        state = hass.states.get("sensor.elm_road_12_link_status")
        return state.state if state else None

    await until(lambda: link_state() == "disconnected")
    state = hass.states.get("sensor.elm_road_12_link_status")
    assert state is not None
    assert "CONNECTION_REFUSED" in state.attributes["reason"]


async def test_sensors_follow_the_runtime(hass: HomeAssistant) -> None:
    entry = node_entry()
    await setup_entry(hass, entry)
    runtime = entry.runtime_data.runtime
    reported = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)

    runtime.publish(
        NodeState(
            LinkStatus.CONNECTED,
            NodePlanStatus.EXECUTING,
            last_telemetry=reported,
            power=PowerFlows(grid_w=-250.0, pv_w=3000.0, battery_w=1500.0, load_w=None),
        )
    )
    await hass.async_block_till_done()

    def state(key: str) -> str:
        found = hass.states.get(f"sensor.elm_road_12_{key}")
        assert found is not None
        return found.state

    assert state("link_status") == "connected"
    assert state("plan_status") == "executing"
    assert state("last_telemetry") == "2026-11-22T10:30:00+00:00"
    assert float(state("grid_power")) == -250.0
    assert float(state("pv_power")) == 3000.0
    assert float(state("battery_power")) == 1500.0
    assert state("load_power") == STATE_UNAVAILABLE

    runtime.publish(NodeState(LinkStatus.ERROR, NodePlanStatus.DEFAULT))
    await hass.async_block_till_done()
    assert state("link_status") == "error"
    assert state("plan_status") == "default"
    assert state("grid_power") == STATE_UNAVAILABLE


@pytest.mark.parametrize("status", list(LinkStatus))
async def test_every_link_status_is_a_valid_option(hass: HomeAssistant, status: LinkStatus) -> None:
    entry = node_entry()
    await setup_entry(hass, entry)
    entry.runtime_data.runtime.publish(NodeState(status, NodePlanStatus.NONE))
    await hass.async_block_till_done()
    found = hass.states.get("sensor.elm_road_12_link_status")
    assert found is not None
    assert found.state == status.value
