"""The HA-free node runtime: its first state and how it notifies listeners."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fractal import __version__
from fractal.link.shadow_link import LinkState
from fractal.link.shadow_link import LinkStatus as LinkReport
from fractal.node import (
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
from fractal.protocol import NodeDescriptor, PlanAck, PlanStatus, dump, parse, to_jsonable


def test_standalone_node_is_standalone_without_plan_or_power() -> None:
    state = NodeRuntime(NodeConfig("home-1", "Home 1", LinkMode.STANDALONE)).state()
    assert state == NodeState(LinkStatus.STANDALONE, NodePlanStatus.NONE)
    assert state.power == PowerFlows(None, None, None, None)
    assert state.last_telemetry is None


@pytest.mark.parametrize("link", [LinkMode.LOCAL, LinkMode.AWS])
def test_linked_node_starts_connecting(link: LinkMode) -> None:
    state = NodeRuntime(NodeConfig("home-1", "Home 1", link)).state()
    assert state.link_status is LinkStatus.CONNECTING
    assert state.link_reason is None


def test_the_links_status_and_its_last_ack_become_the_nodes() -> None:
    runtime = NodeRuntime(NodeConfig("home-1", "Home 1", LinkMode.LOCAL))
    seen: list[NodeState] = []
    runtime.add_listener(seen.append)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    runtime.link_changed(LinkReport(LinkState.ERROR, reason="refused by the broker"))
    assert (runtime.state().link_status, runtime.state().link_reason) == (
        LinkStatus.ERROR,
        "refused by the broker",
    )
    ack = PlanAck(id="p1", status=PlanStatus.REJECTED, ts=when, reason="slots: bad")
    runtime.link_changed(LinkReport(LinkState.CONNECTED, plan_ack=ack))
    assert runtime.state().link_status is LinkStatus.CONNECTED
    assert runtime.state().link_reason is None
    assert runtime.state().plan_status is NodePlanStatus.REJECTED
    runtime.link_changed(LinkReport(LinkState.CONNECTED, plan_ack=ack))  # nothing new
    assert len(seen) == 2
    runtime.link_changed(LinkReport(LinkState.STOPPED))
    assert runtime.state().link_status is LinkStatus.DISCONNECTED
    assert runtime.state().link_reason == "stopped"
    assert runtime.state().plan_status is NodePlanStatus.REJECTED  # no ack: the last one stays


def test_a_sample_carries_the_known_power_flows_in_utc() -> None:
    runtime = NodeRuntime(NodeConfig("home-1", "Home 1", LinkMode.LOCAL))
    runtime.set_power(PowerFlows(grid_w=120.0, pv_w=None, battery_w=-500.0, load_w=None))
    sample = runtime.sample(datetime(2026, 1, 1, 12, tzinfo=UTC))
    assert sample == {"ts": "2026-01-01T12:00:00+00:00", "grid_w": 120.0, "battery_w": -500.0}
    with_soc = runtime.sample(datetime(2026, 1, 1, 12, tzinfo=UTC), soc_pct=57.5)
    assert with_soc["soc_pct"] == 57.5


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
