"""The HA-free node runtime: its first state and how it notifies listeners."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fractal.node import (
    LINK_NOT_AVAILABLE,
    LinkMode,
    LinkStatus,
    NodeConfig,
    NodeRuntime,
    NodeState,
    PlanStatus,
    PowerFlows,
)


def test_standalone_node_is_standalone_without_plan_or_power() -> None:
    state = NodeRuntime(NodeConfig("home-1", "Home 1", LinkMode.STANDALONE)).state()
    assert state == NodeState(LinkStatus.STANDALONE, PlanStatus.NONE)
    assert state.power == PowerFlows(None, None, None, None)
    assert state.last_telemetry is None


@pytest.mark.parametrize("link", [LinkMode.LOCAL, LinkMode.AWS])
def test_linked_node_says_it_is_disconnected_and_why(link: LinkMode) -> None:
    state = NodeRuntime(NodeConfig("home-1", "Home 1", link)).state()
    assert state.link_status is LinkStatus.DISCONNECTED
    assert state.link_reason == LINK_NOT_AVAILABLE


def test_config_tags_cannot_be_changed_afterwards() -> None:
    tags = {"street": "Elm"}
    config = NodeConfig("home-1", "Home 1", LinkMode.STANDALONE, tags)
    tags["street"] = "Oak"
    assert config.tags == {"street": "Elm"}
    with pytest.raises(TypeError):
        config.tags["street"] = "Oak"  # type: ignore[index]


def test_listeners_get_each_new_state_until_removed() -> None:
    runtime = NodeRuntime(NodeConfig("home-1", "Home 1", LinkMode.LOCAL))
    seen: list[NodeState] = []
    remove = runtime.add_listener(seen.append)
    connected = NodeState(
        LinkStatus.CONNECTED,
        PlanStatus.EXECUTING,
        last_telemetry=datetime(2026, 1, 1, tzinfo=UTC),
        power=PowerFlows(grid_w=-250.0, pv_w=3000.0, battery_w=1500.0, load_w=1250.0),
    )
    runtime.publish(connected)
    remove()
    runtime.publish(NodeState(LinkStatus.ERROR, PlanStatus.DEFAULT))
    assert seen == [connected]
    assert runtime.state().link_status is LinkStatus.ERROR
