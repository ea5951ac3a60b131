"""Plan a fleet on several cores: homes are independent LPs, so processes share nothing.

Each worker process parses the scenario once and keeps its own warm model cache. Processes are
started with ``spawn`` (HiGHS keeps a thread pool, which must not be forked), so a worker costs
about a second to start: worth it for hundreds of homes, not for a street.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from .model import Vector
from .planner import HomePlan, Method, Planner
from .scenario import Scenario

_worker: tuple[Scenario, Planner] | None = None


def plan_homes(
    scenario: Scenario,
    *,
    workers: int = 1,
    time_limit_s: float = 5.0,
    adders: dict[int, Vector] | None = None,
    indices: list[int] | None = None,
    planner: Planner | None = None,
    method: Method | None = None,
) -> list[HomePlan]:
    """Plan the homes at ``indices`` (default: all, in order) on ``workers`` processes.

    ``adders`` maps a home's index to its grid price signal (see `Planner.plan_home`);
    ``planner`` is used (and kept warm) when planning in this process; ``method`` (default:
    the planner's, else ``highs``) is how every process plans (see `Planner`).
    """
    method = method or (planner.method if planner else "highs")
    adders = adders or {}
    indices = list(range(len(scenario.homes))) if indices is None else indices
    if workers <= 1 or len(indices) < 2 * workers:
        planner = planner or Planner(time_limit_s, method)
        homes = [scenario.homes[i] for i in indices]
        return planner.plan_homes(scenario, homes, [adders.get(i) for i in indices])
    chunks = [
        [(int(i), adders.get(int(i))) for i in chunk]
        for chunk in np.array_split(indices, workers * 4)
    ]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(scenario.model_dump_json(), time_limit_s, method),
    ) as pool:
        return [plan for chunk_plans in pool.map(_plan_chunk, chunks) for plan in chunk_plans]


def _start_worker(scenario_json: str, time_limit_s: float, method: Method) -> None:
    global _worker  # noqa: PLW0603 - one scenario and one model cache per worker process
    _worker = (Scenario.model_validate_json(scenario_json), Planner(time_limit_s, method))


def _plan_chunk(chunk: list[tuple[int, Vector | None]]) -> list[HomePlan]:
    assert _worker is not None, "worker not started"
    scenario, planner = _worker
    homes = [scenario.homes[i] for i, _ in chunk]
    return planner.plan_homes(scenario, homes, [adder for _, adder in chunk])
