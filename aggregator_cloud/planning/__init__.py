"""Fleet planning: the `fractal-aggregator plan` command over the shared planner."""
