"""Fleet flexibility by price coordination: never one giant LP.

A DSO event caps (turn-down) or floors (turn-up) the net import of a tag group (``tag=value``)
over a window. Each round plans the group's homes separately with a per-slot price signal added
to their grid prices, measures the group's planned net import, and moves the signal where the
limit is missed: up (dearer import) where a cap is exceeded, down below zero (cheaper import)
where a floor is not reached, back towards zero where there is room: dual ascent on the limit.
LP responses are all-or-nothing at a price threshold, so this can oscillate when only part of
one home's flexibility is needed; the best round is kept (every limit met at the lowest cost,
else the smallest miss), and if a cap still does not hold, a primal sweep re-plans the group's
homes one at a time, each with a soft cap on its own net import: the event's cap minus the
others' plans. `Planner.plan_home` takes a cap but no floor, so the sweep serves caps only: a
floor (turn-up) is met by price alone, and when prices fall short its status says by how much.
Each event's status says whether its limit is met.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import Vector
from .parallel import plan_homes
from .planner import HomePlan, Planner
from .scenario import FlexEvent, Scenario

MAX_ROUNDS = 30
STEP_P_PER_KWH = 10.0  # signal change per round for an excess equal to the cap
TOLERANCE_KW = 1e-3


@dataclass(frozen=True)
class EventOutcome:
    event_id: str
    met: bool
    homes: int
    rounds: int
    max_excess_kw: float  # over a cap, or under a floor
    signal_p_per_kwh: list[float]  # the final price signal in the event's slots
    swept: bool = False  # the capped one-home-at-a-time pass was needed
    floor: bool = False  # a turn-up: the group's import held at or over a floor

    @property
    def status(self) -> str:
        if self.homes == 0:
            return "not applied: no home carries the tag"
        if self.met:
            sweep = " and a capped sweep" if self.swept else ""
            return f"met after {self.rounds} price round(s){sweep}"
        if self.floor:
            return f"not met: the group stays {self.max_excess_kw:.3f} kW under its floor"
        return f"not met: the group stays {self.max_excess_kw:.3f} kW over its cap"


def event_slots(scenario: Scenario, event: FlexEvent) -> Vector:
    """1.0 for slots the event window overlaps, else 0.0."""
    starts = scenario.start.timestamp() + np.arange(scenario.slots) * scenario.step_seconds
    ends = starts + scenario.step_seconds
    overlap = (starts < event.end.timestamp()) & (ends > event.start.timestamp())
    return overlap.astype(np.float64)


def plan_fleet(
    scenario: Scenario, planner: Planner | None = None, workers: int = 1
) -> tuple[list[HomePlan], list[EventOutcome]]:
    """Plan every home, then coordinate each event's group by price until its limit holds."""
    return _Coordination(scenario, planner or Planner(), workers).run()


class _Coordination:
    def __init__(self, scenario: Scenario, planner: Planner, workers: int) -> None:
        self.scenario, self.planner, self.workers = scenario, planner, workers
        self.events = list(scenario.events)
        self.members = [
            [i for i, home in enumerate(scenario.homes) if home.tags.get(e.tag) == e.value]
            for e in self.events
        ]
        self.windows = [event_slots(scenario, event) for event in self.events]
        self.signals = [np.zeros(scenario.slots) for _ in self.events]
        self.affected = sorted({i for group in self.members for i in group})
        # The sweep caps homes one at a time; it has nothing to offer a floor.
        self.capped = sorted(
            {
                i
                for group, e in zip(self.members, self.events, strict=True)
                if not e.is_floor
                for i in group
            }
        )
        self.swept = False

    def run(self) -> tuple[list[HomePlan], list[EventOutcome]]:
        plans = self.plan(None, {})
        best_score: tuple[bool, float, float] | None = None
        best_plans, best_round, best_signals = plans, 1, [s.copy() for s in self.signals]
        for round_number in range(1, MAX_ROUNDS + 1):
            excesses = [self.excess(plans, index) for index in range(len(self.events))]
            score, over = self.score(plans)
            if best_score is None or score < best_score:
                best_score, best_plans, best_round = score, plans, round_number
                best_signals = [s.copy() for s in self.signals]
            if not over or not self.affected:
                break
            for signal, excess, event in zip(self.signals, excesses, self.events, strict=True):
                step = STEP_P_PER_KWH * excess / max(event.limit_kw, 1.0)
                if event.is_floor:  # short of the floor: cheaper import, never dearer
                    signal[:] = np.minimum(signal - step, 0.0)
                else:
                    signal[:] = np.maximum(signal + step, 0.0)
            plans = self.replan(plans)
        self.signals = best_signals
        if best_score is not None and best_score[0] and self.capped:
            swept = self.sweep(best_plans)
            self.swept = self.score(swept)[0] < best_score
            if self.swept:
                best_plans = swept
        outcomes = [
            self.outcome(index, best_plans, best_round) for index in range(len(self.events))
        ]
        return best_plans, outcomes

    def score(self, plans: list[HomePlan]) -> tuple[tuple[bool, float, float], bool]:
        """(any limit missed, worst miss, total cost): lower is better."""
        worst = max(
            (float(self.excess(plans, i).max()) for i in range(len(self.events))), default=0.0
        )
        over = worst > TOLERANCE_KW
        return (over, worst if over else 0.0, sum(plan.cost_p for plan in plans)), over

    def sweep(self, plans: list[HomePlan]) -> list[HomePlan]:
        """A primal pass when prices alone fall short: one home at a time, each capped.

        A price moves a home's LP all or nothing; a cap can ask for part of its flexibility.
        Each affected home is re-planned with a soft cap on its net import: the events' caps
        minus what the other homes of the group plan to import.
        """
        swept = list(plans)
        for home_index in self.capped:
            cap = np.full(self.scenario.slots, np.inf)
            for group, window, event in zip(self.members, self.windows, self.events, strict=True):
                if home_index in group and event.import_max_kw is not None:
                    others = sum(swept[j].grid_kw for j in group if j != home_index)
                    share = np.where(window > 0, event.import_max_kw - others, np.inf)
                    cap = np.minimum(cap, share)
            home = self.scenario.homes[home_index]
            adder = self.signal_for(home_index)
            swept[home_index] = self.planner.plan_home(self.scenario, home, adder, cap)
        return swept

    def excess(self, plans: list[HomePlan], index: int) -> Vector:
        """How far the group's net import misses the limit in the event's slots: above a cap,
        below a floor (negative: room left)."""
        group, window, event = self.members[index], self.windows[index], self.events[index]
        if not group:
            return np.zeros_like(window)
        total = np.sum([plans[i].grid_kw for i in group], axis=0)
        miss = event.limit_kw - total if event.is_floor else total - event.limit_kw
        return np.where(window > 0, miss, 0.0)

    def plan(self, indices: list[int] | None, adders: dict[int, Vector]) -> list[HomePlan]:
        return plan_homes(
            self.scenario,
            workers=self.workers,
            time_limit_s=self.planner.cache.time_limit_s,
            adders=adders,
            indices=indices,
            planner=self.planner,
        )

    def replan(self, plans: list[HomePlan]) -> list[HomePlan]:
        adders = {index: self.signal_for(index) for index in self.affected}
        replanned = list(plans)
        for index, plan in zip(self.affected, self.plan(self.affected, adders), strict=True):
            replanned[index] = plan
        return replanned

    def signal_for(self, home_index: int) -> Vector:
        """The sum of the signals of every event whose group holds the home."""
        mine = [
            s for group, s in zip(self.members, self.signals, strict=True) if home_index in group
        ]
        return np.asarray(np.sum(mine, axis=0), dtype=np.float64)

    def outcome(self, index: int, plans: list[HomePlan], rounds: int) -> EventOutcome:
        group, window = self.members[index], self.windows[index]
        worst = max(float(self.excess(plans, index).max()), 0.0) if group else 0.0
        signal = self.signals[index]
        return EventOutcome(
            event_id=self.events[index].id,
            met=bool(group) and worst <= TOLERANCE_KW,
            homes=len(group),
            rounds=rounds,
            max_excess_kw=worst,
            signal_p_per_kwh=[round(float(v), 4) for v, w in zip(signal, window, strict=True) if w],
            swept=self.swept,
            floor=self.events[index].is_floor,
        )
