"""Plan a fleet on several cores: homes are independent LPs, so processes share nothing.

Each worker process receives its homes with each chunk (with the scenario's frame: start, step,
objective) and keeps its own warm model cache. Processes are started with ``spawn`` (HiGHS keeps
a thread pool, which must not be forked), so a worker costs about a second to start: worth it
for hundreds of homes, not for a street; `PlannerPool` keeps the workers up between fleets.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Self

import numpy as np

from . import fast
from .model import Vector
from .planner import FAST_BATCH, FAST_MIN_HOMES, HomePlan, Method, Planner, fast_batch, fast_plans
from .scenario import Home, Scenario

_worker: Planner | None = None


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
    with PlannerPool(workers, time_limit_s=time_limit_s, method=method) as pool:
        return pool.plan(scenario, adders=adders, indices=indices)


class PlannerPool:
    """Worker processes that stay up from one fleet to the next: start-up is paid once.

    Each chunk of homes travels with the scenario's frame (start, step, objective; pickled), so
    a worker parses only what it plans; each worker keeps its own warm `Planner`.
    """

    def __init__(self, workers: int, *, time_limit_s: float = 5.0, method: Method = "highs"):
        self.workers = workers
        self._local = Planner(time_limit_s, method)  # decides which homes the fast solver takes
        self._pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(time_limit_s, method),
        )

    def plan(
        self,
        scenario: Scenario,
        *,
        adders: dict[int, Vector] | None = None,
        indices: list[int] | None = None,
    ) -> list[HomePlan]:
        """Plan the homes at ``indices`` (default: all, in order), in chunks over the workers.

        With ``auto`` or ``fast`` the covered homes travel as the fast solver's arrays (cheap
        to send, unlike the homes themselves); the rest, and any the fast solver cannot prove,
        as homes to HiGHS.
        """
        adders = adders or {}
        indices = list(range(len(scenario.homes))) if indices is None else indices
        homes = [scenario.homes[i] for i in indices]
        home_adders = [adders.get(i) for i in indices]
        plans: list[HomePlan | None] = [None] * len(homes)
        if self._local.method != "highs":
            covered = self._local.covered(scenario, homes)
            if self._local.method == "fast" or len(covered) >= FAST_MIN_HOMES:
                self._plan_fast(scenario, homes, home_adders, covered, plans)
        rest = [i for i, plan in enumerate(plans) if plan is None]
        frame = scenario.model_copy(update={"homes": list(scenario.homes[:1])})
        chunks = [
            (frame, [(homes[int(i)], home_adders[int(i)]) for i in chunk])
            for chunk in np.array_split(rest, self.workers * 4)
            if len(chunk)
        ]
        planned = iter(plan for plans_ in self._pool.map(_plan_chunk, chunks) for plan in plans_)
        return [plan or next(planned) for plan in plans]

    def _plan_fast(
        self,
        scenario: Scenario,
        homes: list[Home],
        adders: list[Vector | None],
        covered: list[int],
        plans: list[HomePlan | None],
    ) -> None:
        started = time.perf_counter()
        size = min(FAST_BATCH, -(-len(covered) // (self.workers * 2)))
        chunks = [covered[first : first + size] for first in range(0, len(covered), size)]
        batches = [
            fast_batch(scenario, [homes[i] for i in chunk], [adders[i] for i in chunk])
            for chunk in chunks
        ]
        results = list(self._pool.map(fast.solve, batches))
        seconds = (time.perf_counter() - started) / max(len(covered), 1)
        for chunk, batch, result in zip(chunks, batches, results, strict=True):
            chunk_homes = [homes[i] for i in chunk]
            chunk_plans = fast_plans(scenario, chunk_homes, batch, result, seconds)
            for i, plan in zip(chunk, chunk_plans, strict=True):
                plans[i] = plan

    def close(self) -> None:
        self._pool.shutdown()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _start_worker(time_limit_s: float, method: Method) -> None:
    global _worker  # noqa: PLW0603 - one warm planner per worker process
    _worker = Planner(time_limit_s, method)


def _plan_chunk(chunk: tuple[Scenario, list[tuple[Home, Vector | None]]]) -> list[HomePlan]:
    assert _worker is not None, "worker not started"
    frame, homes = chunk
    return _worker.plan_homes(frame, [home for home, _ in homes], [adder for _, adder in homes])
