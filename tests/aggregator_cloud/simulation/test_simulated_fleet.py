"""The demo fleet without a broker: its homes, their descriptors, simulated time, the runtime
file, and the scenario and plans the demo makes for them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fractal.planner import Planner
from fractal.protocol import PLAN_BUDGET, NodeDescriptor, Plan, parse, shadow_size

from aggregator_cloud.demo import SLOTS, agile_like_price, demo_scenario
from aggregator_cloud.planning.command import plan_scenario
from aggregator_cloud.simulation.fleet import NoAggregator, SimClock, read_runtime
from aggregator_cloud.simulation.home import HomeModel
from aggregator_cloud.simulation.homes import descriptor, home_specs

NOW = datetime(2026, 11, 22, 10, 47, tzinfo=UTC)


def test_homes_spread_over_streets_and_feeders_the_same_for_the_same_seed() -> None:
    specs = home_specs(12)
    assert [spec.node_id for spec in specs] == [f"sim-{n:03d}" for n in range(1, 13)]
    assert Counter(spec.tags["street"] for spec in specs) == {
        "Elm Road": 3, "Oak Street": 3, "Mill Lane": 3, "Church Walk": 3,
    }  # fmt: skip
    assert Counter(spec.tags["feeder"] for spec in specs) == {"F1": 6, "F2": 6}
    assert {spec.tags["community"] for spec in specs} == {"Demo"}
    assert sum(spec.battery is not None for spec in specs) == 9
    assert sum(spec.ev is not None for spec in specs) == 4
    assert home_specs(12) == specs
    assert home_specs(12, seed=1) != specs
    assert home_specs(2, extra_tags={"feeder": "F9"})[0].tags["feeder"] == "F9"


def test_a_fleet_size_out_of_range_is_refused() -> None:
    for count in (0, 1001):
        with pytest.raises(ValueError, match="must be 1 to 1000"):
            home_specs(count)


def test_every_descriptor_is_a_valid_protocol_document() -> None:
    for spec in home_specs(12):
        document = json.loads(descriptor(spec).model_dump_json(by_alias=True))
        parsed = parse(NodeDescriptor, document)
        assert parsed.document is not None, parsed.problems
        battery = parsed.document.device("battery")
        assert (battery is None) == (spec.battery is None)


def test_simulated_time_runs_speed_times_faster_than_the_wall_clock() -> None:
    wall = [100.0]
    clock = SimClock(60, NOW, monotonic=lambda: wall[0])
    wall[0] += 2.5
    assert clock.now() == NOW + timedelta(minutes=2, seconds=30)
    assert clock.wall_seconds(timedelta(minutes=1)) == 1.0
    for speed in (0, -1, 3601):
        with pytest.raises(ValueError, match="speed must be above 0"):
            SimClock(speed)


def test_the_runtime_file_must_name_a_live_aggregator(tmp_path: Path) -> None:
    with pytest.raises(NoAggregator, match=r"runtime.json is missing\): start `fractal-aggr"):
        read_runtime(tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    runtime = {"pid": int(gone.stdout), "mqtt": {"host": "127.0.0.1", "port": 1}, "http": {}}
    (tmp_path / "runtime.json").write_text(json.dumps(runtime))
    with pytest.raises(NoAggregator, match="is stale"):
        read_runtime(tmp_path)
    live = {**runtime, "pid": os.getpid(), "http": {"port": 2}}
    (tmp_path / "runtime.json").write_text(json.dumps(live))
    assert read_runtime(tmp_path).http_endpoint == "http://127.0.0.1:2"
    (tmp_path / "runtime.json").write_text("{not json")
    with pytest.raises(NoAggregator, match="cannot read"):
        read_runtime(tmp_path)


def test_prices_are_cheap_at_night_and_dearest_in_the_evening_peak() -> None:
    day = NOW.replace(hour=0, minute=0)
    prices = {hour: agile_like_price(day + timedelta(hours=hour)) for hour in range(24)}
    assert min(prices, key=prices.__getitem__) in range(2, 5)
    assert all(
        prices[hour] > max(prices[h] for h in range(24) if not 16 <= h < 19)
        for hour in (16, 17, 18)
    )


def test_the_demo_plans_every_home_within_the_shadow_budget() -> None:
    models = [HomeModel(spec) for spec in home_specs(12)]
    scenario = demo_scenario(models, NOW)
    assert scenario.start == NOW.replace(minute=30)
    output = plan_scenario(scenario, NOW, Planner())
    for home in output["homes"]:
        assert home["plan"] is not None, home.get("plan_problems")
        plan = parse(Plan, home["plan"]).document
        assert plan is not None
        assert plan.slots == SLOTS
        assert shadow_size(plan) <= PLAN_BUDGET
        assert plan.slot_at(NOW) == 0  # in force at once
