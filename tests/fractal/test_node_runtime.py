"""The HA-free node runtime: its first state and how it notifies listeners."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fractal import __version__
from fractal.node import (
    LINK_NOT_AVAILABLE,
    LinkMode,
    LinkStatus,
    NodeConfig,
    NodePlanStatus,
    NodeRuntime,
    NodeState,
    PowerFlows,
    valid_node_id,
    valid_node_name,
)
from fractal.protocol import NodeDescriptor, dump, parse, to_jsonable


def test_standalone_node_is_standalone_without_plan_or_power() -> None:
    state = NodeRuntime(NodeConfig("home-1", "Home 1", LinkMode.STANDALONE)).state()
    assert state == NodeState(LinkStatus.STANDALONE, NodePlanStatus.NONE)
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
        NodePlanStatus.EXECUTING,
        last_telemetry=datetime(2026, 1, 1, tzinfo=UTC),
        power=PowerFlows(grid_w=-250.0, pv_w=3000.0, battery_w=1500.0, load_w=1250.0),
    )
    runtime.publish(connected)
    remove()
    runtime.publish(NodeState(LinkStatus.ERROR, NodePlanStatus.DEFAULT))
    assert seen == [connected]
    assert runtime.state().link_status is LinkStatus.ERROR


def test_descriptor_describes_the_node_without_devices() -> None:
    config = NodeConfig("home-1", "Home 1", LinkMode.AWS, {"street": "Elm Road"})
    descriptor = NodeRuntime(config).descriptor()
    assert isinstance(descriptor, NodeDescriptor)
    assert to_jsonable(descriptor) == {
        "schema": "fractal.node.v1",
        "node": "home-1",
        "name": "Home 1",
        "tags": {"street": "Elm Road"},
        "software": __version__,
        "link": "aws",
        "devices": [],
        "envelope": {},
    }
    assert parse(NodeDescriptor, dump(descriptor)).ok


def test_a_valid_config_has_no_problems() -> None:
    assert NodeConfig("a:b_c-D9", "x" * 64, LinkMode.LOCAL, {"feeder": "F12"}).problems() == []


def test_config_problems_name_what_is_wrong() -> None:
    problems = NodeConfig("no spaces", "x" * 65, LinkMode.LOCAL, {"Street": "Elm"}).problems()
    assert len(problems) == 3
    assert "name" in problems[0]
    assert "no spaces" in problems[1]
    assert problems[2].startswith("tags: key 'Street'")


@pytest.mark.parametrize(
    ("node_id", "valid"),
    [("home-1", True), ("a" * 128, True), ("a" * 129, False), ("", False), ("é", False)],
)
def test_node_id_follows_the_protocol(node_id: str, valid: bool) -> None:
    assert valid_node_id(node_id) is valid
    assert parse(NodeDescriptor, {**MINIMAL_DESCRIPTOR, "node": node_id}).ok is valid


@pytest.mark.parametrize(("name", "valid"), [("H", True), ("x" * 64, True), ("", False)])
def test_node_name_follows_the_protocol(name: str, valid: bool) -> None:
    assert valid_node_name(name) is valid
    assert parse(NodeDescriptor, {**MINIMAL_DESCRIPTOR, "name": name}).ok is valid


MINIMAL_DESCRIPTOR = {
    "schema": "fractal.node.v1",
    "node": "home-1",
    "name": "Home 1",
    "software": "0.1.0",
    "link": "standalone",
}
