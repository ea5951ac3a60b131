"""The planner: a continuous LP per home, solved with HiGHS (see docs/planner.md)."""

from .planner import HomePlan, Planner, PlanStatus, plan_cost_p
from .scenario import Home, Scenario, ScenarioError, load_scenario, parse_scenario

__all__ = [
    "Home",
    "HomePlan",
    "PlanStatus",
    "Planner",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_scenario",
    "plan_cost_p",
]
