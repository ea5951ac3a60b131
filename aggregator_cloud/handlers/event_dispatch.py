"""DSO flexibility events in the dispatch: the nodes of an event's group planned together.

`dispatch_event_plans(node_ids, events=..., ...)` is `dispatch_plans` with the stored
flexibility events (`fractal.flex_event.v1`) that reach into the planning horizon:

* The nodes among `node_ids` whose tags match an event's `group` are planned TOGETHER with the
  planner's price coordination (`fractal.planner.fleet.plan_fleet`, never one giant LP); their
  plans are written with `source: "dso"` and the event's id, so the node's executor applies the
  DSO priority and the householder sees "DSO event" as the plan's source. Every other node is
  planned alone, as `dispatch_plans` does.
* A turn-down of X kW is measured against the group's own plans without the event (the
  baseline, planned the same way just before): in each of the event's slots the group's net
  import is capped at baseline - X. `plan_fleet` takes one limit per event, so each slot becomes
  an event of its own. The planner caps import at zero at the lowest (its caps are powers, not
  exports), so a request beyond the group's baseline import is capped at zero import.
* A turn-up of X kW (more import or less export) is the same with a floor: in each slot the
  group's net import is held at or over baseline + X, by price alone (the planner's capped
  sweep serves caps only), and the answer says how much of it the plans deliver.
* The answer (`EventDispatch`, in `DispatchResult.events`) says, per event, the requested kW,
  the kW the group's plans deliver in each slot, the kW deliverable over the whole window (the
  smallest slot's, capped at the request), the energy, and which nodes take part: when the
  group cannot deliver it all, it says exactly how much it can.

Only the nodes the call is given take part: callers pass every node of a group together
(`with_event_groups` widens a call to whole groups; the local scheduler plans the whole fleet
when an event is stored). An event none of the call's nodes belongs to is answered with
`NO_MEMBERS` and no nodes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from fractal.planner import HomePlan, Planner, Scenario
from fractal.planner.fleet import event_slots, plan_fleet
from fractal.planner.scenario import FlexEvent, Home
from fractal.protocol import FlexDirection, FlexibilityEvent, PlanSource, replacing_payload
from fractal.protocol.types import FlexStatus

from aggregator_cloud.planning.inputs import PlanningInputs

from .plan_dispatch import (
    PLAN_TIME_LIMIT_S,
    DispatchResult,
    EventDispatch,
    NodeDispatch,
    PlanGrid,
    PlanningFleet,
    PlanShadows,
    dispatch_plans,
    node_scenario,
    plan_document,
)

LOGGER = logging.getLogger(__name__)

ENDED = (FlexStatus.CANCELLED, FlexStatus.COMPLETED)
NO_MEMBERS = "not planned: no node of this dispatch in the group could be planned"
TAG_PREFIX = "flex_event:"
"""The planner tag that marks an event's members (an event's group may name several tags,
the planner's event one)."""


def dispatch_event_plans(
    node_ids: Sequence[str],
    *,
    events: Sequence[FlexibilityEvent],
    fleet: PlanningFleet,
    inputs: PlanningInputs,
    shadows: PlanShadows,
    now: datetime,
    planner: Planner | None = None,
) -> DispatchResult:
    """Plan `node_ids`: the members of live events together for the events, the others alone."""
    grid = PlanGrid.of(inputs, now)
    planner = planner or Planner(time_limit_s=PLAN_TIME_LIMIT_S)
    live = [event for event in events if _in_horizon(event, grid)]
    members = _members(node_ids, live, fleet)
    in_groups = {node for nodes in members.values() for node in nodes}
    grouped = [node for node in dict.fromkeys(node_ids) if node in in_groups]
    alone = [node for node in node_ids if node not in in_groups]
    result = dispatch_plans(
        alone, fleet=fleet, inputs=inputs, shadows=shadows, now=now, planner=planner
    )
    answers: list[EventDispatch] = []
    done: list[NodeDispatch] = []
    planned_events = [event for event in live if members[event.id]]
    try:
        group_done, group_answers = _dispatch_group(
            grouped,
            planned_events,
            members,
            grid,
            fleet=fleet,
            inputs=inputs,
            shadows=shadows,
            planner=planner,
        )
    except Exception as error:  # a store fault or a bug: the groups' nodes only
        LOGGER.exception("event dispatch: the events' groups failed")
        why = f"{type(error).__name__}: {error}"
        group_done = [NodeDispatch(node, problems=(why,)) for node in grouped]
        group_answers = [_answer(event, (), None, why) for event in planned_events]
    done.extend(group_done)
    answers.extend(group_answers)
    answers.extend(_answer(event, (), None) for event in live if not members[event.id])
    order = {node: index for index, node in enumerate(node_ids)}
    nodes = sorted((*result.nodes, *done), key=lambda entry: order[entry.node])
    return DispatchResult(tuple(nodes), result.problems, tuple(answers))


def _in_horizon(event: FlexibilityEvent, grid: PlanGrid) -> bool:
    horizon_end = grid.slot_start(grid.max_slots)
    return event.status not in ENDED and event.end > grid.start and event.start < horizon_end


def _members(
    node_ids: Sequence[str], events: Sequence[FlexibilityEvent], fleet: PlanningFleet
) -> dict[str, list[str]]:
    """Each event's id -> the nodes of `node_ids` in its group (nodes without a descriptor
    are left to `dispatch_plans`, which says why they are not planned)."""
    tags: dict[str, dict[str, str]] = {}
    for node in node_ids:
        try:
            state = fleet.planning_state(node)
        except Exception:  # a store fault: the node's own dispatch reports it
            LOGGER.exception("event dispatch: cannot read node %s", node)
            continue
        if state is not None:
            tags[node] = dict(state.descriptor.tags)
    return {
        event.id: [node for node in node_ids if node in tags and event.selects(tags[node])]
        for event in events
    }


def _dispatch_group(
    grouped: list[str],
    events: Sequence[FlexibilityEvent],
    members: dict[str, list[str]],
    grid: PlanGrid,
    *,
    fleet: PlanningFleet,
    inputs: PlanningInputs,
    shadows: PlanShadows,
    planner: Planner,
) -> tuple[list[NodeDispatch], list[EventDispatch]]:
    """Plan the events' members together; write their plans with source dso."""
    if not grouped:
        return [], []
    built = _group_scenario(grouped, members, grid, fleet, inputs)
    if isinstance(built, list):  # no member could be planned at all
        return built, [_answer(event, (), None) for event in events]
    scenario, device_ids, notes, failed = built
    baseline, _ = plan_fleet(scenario, planner)
    flex_events = [limit for event in events for limit in _slot_limits(scenario, event, baseline)]
    plans, _ = plan_fleet(scenario.model_copy(update={"events": flex_events}), planner)
    done = list(failed)
    for index, home in enumerate(scenario.homes):
        event_id = _first_event(home, events)
        done.append(
            _write(
                home,
                scenario,
                plans[index],
                event_id,
                device_ids=device_ids,
                notes=notes,
                grid=grid,
                inputs=inputs,
                shadows=shadows,
            )
        )
    answers = [_answer(event, scenario.homes, (scenario, baseline, plans)) for event in events]
    return done, answers


def _group_scenario(
    grouped: list[str],
    members: dict[str, list[str]],
    grid: PlanGrid,
    fleet: PlanningFleet,
    inputs: PlanningInputs,
) -> (
    tuple[Scenario, dict[str, dict[str, str]], dict[str, tuple[str, ...]], list[NodeDispatch]]
    | list[NodeDispatch]
):
    """One scenario with every member as a home (on the slots all members' inputs cover),
    each tagged with the events it takes part in; the members that cannot be planned."""
    homes: list[Home] = []
    device_ids: dict[str, dict[str, str]] = {}
    notes: dict[str, tuple[str, ...]] = {}
    failed: list[NodeDispatch] = []
    first: Scenario | None = None
    for node in grouped:
        state = fleet.planning_state(node)
        built = node_scenario(node, state, inputs, grid) if state is not None else None
        if built is None or isinstance(built, NodeDispatch):
            failed.append(built or NodeDispatch(node, problems=("no descriptor yet",)))
            continue
        one, device_ids[node], notes[node] = built
        first = first or one
        marks = {f"{TAG_PREFIX}{event}": "member" for event, ids in members.items() if node in ids}
        homes.append(one.homes[0].model_copy(update={"tags": {**one.homes[0].tags, **marks}}))
    if first is None:
        return failed
    slots = min(len(home.load_kw) for home in homes)
    trimmed = [_trim(home, slots) for home in homes]
    return first.model_copy(update={"homes": trimmed}), device_ids, notes, failed


def _trim(home: Home, slots: int) -> Home:
    """The home on its first `slots` slots (members' inputs may reach different horizons)."""
    series = ("pv_kw", "load_kw", "import_p_per_kwh", "export_p_per_kwh", "carbon_g_per_kwh")
    update: dict[str, Any] = {}
    for name in series:
        values = getattr(home, name, None)
        if values is not None and len(values) > slots:
            update[name] = values[:slots]
    return home.model_copy(update=update)


def _slot_limits(
    scenario: Scenario, event: FlexibilityEvent, baseline: list[HomePlan]
) -> list[FlexEvent]:
    """The event as one planner event per slot it covers: a turn-down caps the group's import
    at its baseline import less the request (at zero at the lowest), a turn-up floors it at its
    baseline import plus the request."""
    tag = f"{TAG_PREFIX}{event.id}"
    group = [i for i, home in enumerate(scenario.homes) if tag in home.tags]
    requested_kw = event.power_w / 1000
    total = np.sum([baseline[i].grid_kw for i in group], axis=0)
    limits = []
    for slot in np.flatnonzero(event_slots(scenario, _window(event))):
        start = scenario.slot_start(int(slot))
        if event.direction is FlexDirection.UP:
            limit = {"import_min_kw": max(0.0, float(total[slot]) + requested_kw)}
        else:
            limit = {"import_max_kw": max(0.0, float(total[slot]) - requested_kw)}
        limits.append(
            FlexEvent(
                id=f"{event.id}@{int(slot)}",
                tag=tag,
                value="member",
                start=start,
                end=start + timedelta(seconds=scenario.step_seconds),
                **limit,
            )
        )
    return limits


def _window(event: FlexibilityEvent) -> FlexEvent:
    """The event's window as the planner's event (only its times are used)."""
    return FlexEvent(
        id=event.id, tag="-", value="-", start=event.start, end=event.end, import_max_kw=0
    )


def _first_event(home: Home, events: Sequence[FlexibilityEvent]) -> str | None:
    return next((e.id for e in events if f"{TAG_PREFIX}{e.id}" in home.tags), None)


def _write(
    home: Home,
    scenario: Scenario,
    planned: HomePlan,
    event_id: str | None,
    *,
    device_ids: dict[str, dict[str, str]],
    notes: dict[str, tuple[str, ...]],
    grid: PlanGrid,
    inputs: PlanningInputs,
    shadows: PlanShadows,
) -> NodeDispatch:
    """Write one member's plan with source dso; its trouble is its own."""
    node = home.id
    own = scenario.model_copy(update={"homes": [home], "events": []})
    try:
        plan = plan_document(own, planned, device_ids[node], grid, inputs.tolerance)
        if isinstance(plan, NodeDispatch):
            return plan
        plan = plan.model_copy(update={"source": PlanSource.DSO, "event": event_id})
        shadows.write_plan(node, replacing_payload(plan, shadows.desired_plan(node)))
    except Exception as error:  # a shadow fault or a bug: this node only
        LOGGER.exception("event dispatch: node %s failed", node)
        return NodeDispatch(node, problems=(f"{type(error).__name__}: {error}",))
    status = str(planned.status)
    return NodeDispatch(node, plan.id, status, round(planned.cost_p, 4), plan.slots, notes[node])


def _answer(
    event: FlexibilityEvent,
    homes: Sequence[Home],
    planned: tuple[Scenario, list[HomePlan], list[HomePlan]] | None,
    failure: str | None = None,
) -> EventDispatch:
    """What the group's plans deliver against the request, slot by slot and over the window."""
    requested_kw = event.power_w / 1000
    tag = f"{TAG_PREFIX}{event.id}"
    group = [i for i, home in enumerate(homes) if tag in home.tags]
    base = EventDispatch(event=event.id, direction=str(event.direction), requested_kw=requested_kw)
    if failure is not None:
        return replace(base, status=f"not planned: {failure}")
    if planned is None or not group:
        return replace(base, status=NO_MEMBERS)
    scenario, baseline, plans = planned
    window = event_slots(scenario, _window(event)) > 0
    before = np.sum([baseline[i].grid_kw for i in group], axis=0)[window]
    after = np.sum([plans[i].grid_kw for i in group], axis=0)[window]
    delivered = after - before if event.direction is FlexDirection.UP else before - after
    firm = float(min(np.min(delivered), requested_kw)) if delivered.size else 0.0
    energy = float(np.sum(np.minimum(delivered, requested_kw))) * scenario.step_seconds / 3600
    met = bool(delivered.size) and firm >= requested_kw - 1e-3
    slot_starts = np.flatnonzero(window)
    return replace(
        base,
        nodes=tuple(homes[i].id for i in group),
        slot_starts=tuple(scenario.slot_start(int(s)).isoformat() for s in slot_starts),
        baseline_kw=_rounded(before),
        planned_kw=_rounded(after),
        delivered_kw=_rounded(delivered),
        deliverable_kw=round(max(firm, 0.0), 3),
        delivered_kwh=round(max(energy, 0.0), 3),
        met=met,
        status="met" if met else f"can deliver {max(firm, 0.0):.3f} of {requested_kw:.3f} kW",
    )


def _rounded(values: Any) -> tuple[float, ...]:
    return tuple(round(float(value), 3) for value in values)


def with_event_groups(
    node_ids: Sequence[str],
    events: Sequence[FlexibilityEvent],
    fleet: PlanningFleet,
    now: datetime,
) -> list[str]:
    """`node_ids` and, for each event under way or ahead that holds one of them,
    every other plannable node of its group: a group is always planned together (a node
    re-planned alone for a deviation would otherwise drop its share of the event)."""
    live = [e for e in events if e.status not in ENDED and e.end > now]
    if not live:
        return list(node_ids)
    everyone = list(fleet.plannable_nodes())
    groups = _members(everyone, live, fleet)
    wanted = set(node_ids)
    for members in groups.values():
        if wanted & set(members):
            wanted |= set(members)
    return [*node_ids, *(node for node in everyone if node in wanted and node not in node_ids)]
