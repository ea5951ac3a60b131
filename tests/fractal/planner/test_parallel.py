"""Planning on several processes gives plans as good as one process's."""

from __future__ import annotations

import numpy as np
import pytest
from fractal.planner import Planner, parse_scenario
from fractal.planner.parallel import plan_homes

from tests.support.planner_check import replay
from tests.support.planner_scenarios import battery, home, scenario


def test_two_workers_plan_every_home_as_well_as_one() -> None:
    homes = [
        home(
            f"h{i}",
            load=[0.5 + 0.1 * i] * 6,
            imp=[5.0, 5.0, 30.0, 30.0, 10.0, 40.0],
            exp=[1.0] * 6,
            battery=battery(soc_kwh=float(i)),
        )
        for i in range(6)
    ]
    parsed = parse_scenario(scenario(*homes))
    signal = {2: np.array([0.0, 0.0, 50.0, 50.0, 0.0, 0.0])}
    parallel = plan_homes(parsed, workers=2, adders=signal)
    planner = Planner()
    sequential = [
        planner.plan_home(parsed, parsed.homes[i], signal.get(i)) for i in range(len(homes))
    ]
    assert [p.home_id for p in parallel] == [f"h{i}" for i in range(6)]
    for one, other in zip(parallel, sequential, strict=True):
        assert one.status == other.status
        assert one.cost_p == pytest.approx(other.cost_p, abs=1e-9)
        assert replay(parsed, parsed.homes[int(one.home_id[1:])], one).violations == []
