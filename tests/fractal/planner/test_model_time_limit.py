"""A re-used HiGHS model gives every solve the whole time limit, however many came before."""

from __future__ import annotations

import numpy as np
from fractal.planner import Planner, parse_scenario

from tests.support.planner_scenarios import battery, home, scenario

LIMIT_S = 0.05


def test_a_warm_model_keeps_solving_after_its_solves_add_up_to_the_time_limit() -> None:
    rng = np.random.default_rng(3)
    slots = 48
    documents = [
        home(
            f"h{index}",
            load=[round(float(v), 3) for v in rng.uniform(0, 3, slots)],
            pv=[round(float(v), 3) for v in rng.uniform(0, 4, slots)],
            imp=[round(float(v), 3) for v in rng.uniform(5, 40, slots)],
            exp=[4.0] * slots,
            battery=battery(soc_kwh=float(rng.uniform(0, 10))),
        )
        for index in range(400)
    ]
    fleet = parse_scenario(scenario(*documents, step_seconds=1800))
    planner = Planner(time_limit_s=LIMIT_S)
    statuses = [planner.plan_home(fleet, each).status.kind for each in fleet.homes]
    (model,) = planner.cache._models.values()  # one configuration: one model for all 400
    # The solves together ran longer than one solve may: the case this test is about.
    assert model._highs.getRunTime() > LIMIT_S
    assert statuses == ["optimal"] * len(fleet.homes)
