"""The node's power flows from its devices' power readings, by role."""

from __future__ import annotations

from fractal.node import LinkMode, NodeConfig, NodeRuntime, NodeState, PowerFlows, power_flows


def test_a_home_with_grid_meter_pv_and_battery() -> None:
    flows = power_flows([("grid_meter", 500.0), ("pv_inverter", 3000.0), ("battery", 1500.0)])

    assert flows == PowerFlows(grid_w=500.0, pv_w=3000.0, battery_w=1500.0, load_w=2000.0)


def test_several_pv_devices_add_up_and_standby_draw_is_not_negative_generation() -> None:
    flows = power_flows([("grid_meter", 100.0), ("pv_meter", 1200.0), ("pv_inverter", -8.0)])

    assert (flows.pv_w, flows.battery_w, flows.load_w) == (1200.0, None, 1300.0)


def test_sub_meters_ev_chargers_and_hydro_do_not_change_the_node_flows() -> None:
    flows = power_flows([("grid_meter", -700.0), ("sub_meter", 300.0), ("ev_charger", 7000.0)])

    assert flows == PowerFlows(grid_w=-700.0, pv_w=None, battery_w=None, load_w=0.0)


def test_an_unknown_reading_makes_its_flow_and_the_load_unknown() -> None:
    assert power_flows([("grid_meter", None), ("pv_meter", 100.0)]).load_w is None
    flows = power_flows([("grid_meter", 200.0), ("battery", None)])
    assert (flows.grid_w, flows.battery_w, flows.load_w) == (200.0, None, None)


def test_without_devices_nothing_is_known() -> None:
    assert power_flows([]) == PowerFlows()


def test_set_power_publishes_only_changes() -> None:
    runtime = NodeRuntime(NodeConfig("n1", "N1", LinkMode.STANDALONE))
    seen: list[NodeState] = []
    runtime.add_listener(seen.append)
    flows = PowerFlows(grid_w=1.0, load_w=1.0)

    runtime.set_power(flows)
    runtime.set_power(flows)

    assert [state.power for state in seen] == [flows]
    assert runtime.state().link_status.value == "standalone"
