"""Re-planning: plan nodes for the next hours and write each plan to its `plan` shadow.

A plain function, like the other handlers, so the local runtime's scheduler and the AWS
Lambdas call the very same code; only the three things it is handed differ:

* `fleet` (`PlanningFleet`): each node's descriptor and latest state of charge. Locally
  `RegistryFleet` over the SQLite fleet registry; on AWS an implementation over DynamoDB.
* `inputs` (`PlanningInputs`, aggregator_cloud/planning/inputs.py): tariffs, PV and load
  forecasts, carbon intensity, for the fleet and per node.
* `shadows` (`PlanShadows`): reads and writes the `plan` named shadow. `IotDataPlanShadows`
  implements it over the boto3 `iot-data` client, which talks to AWS IoT Core or, unchanged,
  to the local shadow service (only the endpoint differs).

`dispatch_plans(node_ids, fleet=..., inputs=..., shadows=..., now=...)` plans each node on its
own (one HiGHS LP each, see docs/planner.md), writes the plan with `replacing_payload` (so
fields of the previous plan do not survive the shadow's merge) and returns a `DispatchResult`
saying, per node, what was written or why not. It never raises for one node's trouble: a node
without a descriptor, inputs that do not cover it, a planner or shadow failure are that node's
problems and the other nodes are still planned. On AWS a scheduled Lambda lists the nodes
(`PlanningFleet.plannable_nodes`) and fans them out in batches; each batch is one call.

`nodes_to_replan(event)` reads a rule event (a shadow `update/documents` message plus
`thing_name`, as the rules dispatcher and the IoT rules build it) and says which nodes should be
planned again now: a node reporting a new deviation from its plan, asking for a new plan
(`reported.replan_requested`), acknowledging that its plan expired, or publishing its first or a
changed descriptor.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from fractal.executor.envelope import ev_current_range
from fractal.planner import HomePlan, Planner, Scenario, ScenarioError, parse_scenario
from fractal.planner.document import (
    BATTERY_DEVICE,
    EV_DEVICE,
    EV_VOLTS,
    PlanDocumentError,
    to_plan_document,
)
from fractal.planner.scenario import Objective
from fractal.protocol import (
    DeviceKind,
    NodeDescriptor,
    Plan,
    PlanStatus,
    Tolerance,
    parse,
    replacing_payload,
    to_jsonable,
)

from aggregator_cloud.planning.inputs import EvSession, PlanningInputs, Series

from .result import thing_name

LOGGER = logging.getLogger(__name__)

PLAN_SHADOW: Final = "plan"
DEFAULT_STEP_S: Final = 1800
MAX_HORIZON_H: Final = 48
PLAN_TIME_LIMIT_S: Final = 5.0
"""The planner's hard time limit per node, seconds."""
DEFAULT_IMPORT_W: Final = 23_000
"""Import limit when the node's envelope gives none: a 100 A single-phase supply."""
DEFAULT_EXPORT_W: Final = 3_680
"""Export limit when the node's envelope gives none: 16 A per phase (G98, no DNO study)."""
DEFAULT_TOLERANCE: Final = Tolerance(soc_pct=10, grid_w=3000)
"""How far a node may stray from its plan before it reports a deviation (and is re-planned)."""


@dataclass(frozen=True)
class NodePlanningState:
    """What the planner needs to know about one node besides the inputs."""

    descriptor: NodeDescriptor
    """The node's devices, their safety envelopes and its grid limits (`reported.node`)."""
    soc_pct: float | None = None
    """Latest reported state of charge of the node's batteries together, % (None: unknown;
    the plan then starts from the installer's lowest allowed SoC)."""
    soc_at: datetime | None = None
    """When `soc_pct` was measured."""


class PlanningFleet(Protocol):
    """The fleet as the planner reads it (locally the SQLite registry, on AWS DynamoDB)."""

    def planning_state(self, node: str) -> NodePlanningState | None:
        """The node's descriptor and latest state; None if the node is unknown or has not
        published a descriptor yet."""

    def plannable_nodes(self) -> Sequence[str]:
        """Every node to plan on a schedule (those with a descriptor), in a stable order."""


class PlanShadows(Protocol):
    """The `plan` named shadows (on AWS: `iot-data` `get_thing_shadow` and
    `update_thing_shadow(thingName=node, shadowName="plan", payload=...)`)."""

    def desired_plan(self, node: str) -> Mapping[str, Any] | None:
        """The JSON now in the node's `plan` shadow, `desired.plan`; None if there is none."""

    def write_plan(self, node: str, payload: str) -> None:
        """Write a shadow update document (`{"state":{"desired":{"plan":...}}}`) to the node's
        `plan` shadow. Raises on failure (the caller records it as the node's problem)."""


@dataclass(frozen=True)
class NodeDispatch:
    """What became of one node in a dispatch."""

    node: str
    plan_id: str | None = None
    """The id of the plan written; None if none was."""
    status: str | None = None
    """The planner's status (`optimal`, `feasible`, `relaxed: why`); None if not planned."""
    cost_p: float | None = None
    """Expected cost of the plan over its horizon, pence."""
    slots: int = 0
    problems: tuple[str, ...] = ()
    """Why no plan was written, or what the plan had to leave out."""

    @property
    def written(self) -> bool:
        return self.plan_id is not None


@dataclass(frozen=True)
class EventDispatch:
    """What the plans written for one flexibility event deliver (event_dispatch.py)."""

    event: str
    direction: str
    requested_kw: float
    nodes: tuple[str, ...] = ()
    """The nodes planned together for the event (plans with source dso)."""
    slot_starts: tuple[str, ...] = ()
    """The start of each of the event's slots in the plans (UTC ISO-8601)."""
    baseline_kw: tuple[float, ...] = ()
    """The group's planned net import per slot without the event, kW."""
    planned_kw: tuple[float, ...] = ()
    """The group's planned net import per slot with the event, kW."""
    delivered_kw: tuple[float, ...] = ()
    """baseline - planned per slot: what the group's plans deliver, kW."""
    deliverable_kw: float = 0.0
    """What the group delivers over the whole window: the smallest slot's, at most the
    request, kW."""
    delivered_kwh: float = 0.0
    """The energy delivered in the window, each slot counted up to the request, kWh."""
    met: bool = False
    status: str = ""


@dataclass(frozen=True)
class DispatchResult:
    """What one `dispatch_plans` call did, node by node (like a HandlerResult, JSON-ready)."""

    nodes: tuple[NodeDispatch, ...] = ()
    problems: tuple[str, ...] = ()
    """Problems of the call as a whole (e.g. inputs that cover no time from now)."""
    events: tuple[EventDispatch, ...] = ()
    """Per flexibility event planned (`dispatch_event_plans`): what its plans deliver."""

    @property
    def written(self) -> tuple[str, ...]:
        return tuple(node.node for node in self.nodes if node.written)

    @property
    def ok(self) -> bool:
        return not self.problems and all(node.written for node in self.nodes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: what a Lambda returns."""
        return {**asdict(self), "written": list(self.written), "ok": self.ok}


@dataclass(frozen=True)
class IotDataPlanShadows:
    """`PlanShadows` over a boto3 `iot-data` client (AWS IoT Core or the local shadow service)."""

    client: Any
    """`boto3.client("iot-data", endpoint_url=...)`."""
    shadow_name: str = PLAN_SHADOW

    def desired_plan(self, node: str) -> Mapping[str, Any] | None:
        try:
            response = self.client.get_thing_shadow(thingName=node, shadowName=self.shadow_name)
        except self.client.exceptions.ResourceNotFoundException:
            return None
        document = json.loads(response["payload"].read())
        plan = document.get("state", {}).get("desired", {}).get("plan")
        return plan if isinstance(plan, Mapping) else None

    def write_plan(self, node: str, payload: str) -> None:
        self.client.update_thing_shadow(
            thingName=node, shadowName=self.shadow_name, payload=payload.encode()
        )


def dispatch_plans(
    node_ids: Sequence[str],
    *,
    fleet: PlanningFleet,
    inputs: PlanningInputs,
    shadows: PlanShadows,
    now: datetime,
    planner: Planner | None = None,
) -> DispatchResult:
    """Plan each of `node_ids` from the slot `now` falls in and write its plan.

    `planner` keeps warm HiGHS models between calls: a long-lived caller (the local
    scheduler, a warm Lambda) passes the same one every time."""
    grid = PlanGrid.of(inputs, now)
    planner = planner or Planner(time_limit_s=PLAN_TIME_LIMIT_S)
    done = [
        _dispatch_node(node, grid, fleet=fleet, inputs=inputs, shadows=shadows, planner=planner)
        for node in node_ids
    ]
    return DispatchResult(tuple(done))


@dataclass(frozen=True)
class PlanGrid:
    """The time grid plans are made on: from the start of the current slot, up to the horizon."""

    issued: datetime
    start: datetime
    step_seconds: int
    max_slots: int

    @classmethod
    def of(cls, inputs: PlanningInputs, now: datetime) -> PlanGrid:
        step = inputs.step_seconds or DEFAULT_STEP_S
        horizon_s = (inputs.horizon_hours or MAX_HORIZON_H) * 3600
        floor = int(now.timestamp()) // step * step
        return cls(now, datetime.fromtimestamp(floor, UTC), step, max(1, int(horizon_s // step)))

    def slot_start(self, slot: int) -> datetime:
        return self.start + timedelta(seconds=self.step_seconds * slot)

    def values(self, series: Series | None) -> list[float]:
        """The series' mean in each slot from the start, as far as it covers slots whole."""
        found: list[float] = []
        if series is None:
            return found
        for slot in range(self.max_slots):
            value = series.mean(self.slot_start(slot), self.step_seconds)
            if value is None:
                break
            found.append(value)
        return found


def _dispatch_node(
    node: str,
    grid: PlanGrid,
    *,
    fleet: PlanningFleet,
    inputs: PlanningInputs,
    shadows: PlanShadows,
    planner: Planner,
) -> NodeDispatch:
    """One node, start to finish; whatever goes wrong is this node's problem only."""
    try:
        state = fleet.planning_state(node)
        if state is None:
            return NodeDispatch(node, problems=("no descriptor yet: the node has not reported",))
        built = node_scenario(node, state, inputs, grid)
        if isinstance(built, NodeDispatch):
            return built
        scenario, device_ids, notes = built
        home = scenario.homes[0]
        planned = planner.plan_home(scenario, home)
        plan = plan_document(scenario, planned, device_ids, grid, inputs.tolerance)
        if isinstance(plan, NodeDispatch):
            return plan
        shadows.write_plan(node, replacing_payload(plan, shadows.desired_plan(node)))
    except Exception as error:  # a store or shadow fault, or a bug: this node only
        LOGGER.exception("plan dispatch: node %s failed", node)
        return NodeDispatch(node, problems=(f"{type(error).__name__}: {error}",))
    return NodeDispatch(
        node, plan.id, str(planned.status), round(planned.cost_p, 4), plan.slots, notes
    )


def node_scenario(
    node: str, state: NodePlanningState, inputs: PlanningInputs, grid: PlanGrid
) -> tuple[Scenario, dict[str, str], tuple[str, ...]] | NodeDispatch:
    """The one-home scenario for `node`, the plan's device ids (planner name -> the node's
    device id) and notes on what is left out; or the NodeDispatch saying why it cannot be."""
    forecasts = inputs.for_node(node)
    series = {
        "import_p_per_kwh": grid.values(forecasts.import_p_per_kwh),
        "export_p_per_kwh": grid.values(forecasts.export_p_per_kwh),
        "load_kw": grid.values(forecasts.load_kw),
    }
    if forecasts.pv_kw is not None:
        series["pv_kw"] = grid.values(forecasts.pv_kw)
    objective = inputs.objective or Objective()
    if objective.mode != "cost":
        series["carbon_g_per_kwh"] = grid.values(forecasts.carbon_g_per_kwh)
    missing = [name for name, values in series.items() if not values]
    if missing:
        since = grid.start.isoformat()
        return NodeDispatch(
            node, problems=tuple(f"the inputs have no {name} from {since}" for name in missing)
        )
    slots = min(len(values) for values in series.values())
    home: dict[str, Any] = {name: values[:slots] for name, values in series.items()}
    home.setdefault("pv_kw", [0.0] * slots)
    home["pv_kw"] = [max(0.0, value) for value in home["pv_kw"]]
    home["load_kw"] = [max(0.0, value) for value in home["load_kw"]]
    home |= {"id": node, "tags": dict(state.descriptor.tags), "grid": _grid(state.descriptor)}
    device_ids: dict[str, str] = {}
    battery, notes = _battery(state)
    if battery is not None:
        home["battery"], device_ids[BATTERY_DEVICE] = battery
    own = inputs.nodes.get(node)
    ev, ev_notes = _ev(state, own.ev if own is not None else None, grid)
    if ev is not None:
        home["ev"], device_ids[EV_DEVICE] = ev
    notes += ev_notes
    document = {
        "start": grid.start.isoformat(),
        "step_seconds": grid.step_seconds,
        "objective": objective.model_dump(),
        "homes": [home],
    }
    try:
        return parse_scenario(document), device_ids, notes
    except ScenarioError as error:
        return NodeDispatch(node, problems=tuple(error.problems))


def _grid(descriptor: NodeDescriptor) -> dict[str, float]:
    envelope = descriptor.envelope
    import_w = envelope.import_max_w if envelope.import_max_w is not None else DEFAULT_IMPORT_W
    export_w = envelope.export_max_w if envelope.export_max_w is not None else DEFAULT_EXPORT_W
    return {"import_max_kw": import_w / 1000, "export_max_kw": export_w / 1000}


def _battery(
    state: NodePlanningState,
) -> tuple[tuple[dict[str, float], str] | None, tuple[str, ...]]:
    """The planner's battery for the node's first battery with a capacity, and notes on any
    battery left to its local default."""
    batteries = [device for device in state.descriptor.devices if device.kind is DeviceKind.BATTERY]
    usable = [device for device in batteries if (device.envelope.capacity_wh or 0) > 0]
    notes = [
        f"battery {device.id}: no capacity_wh in its envelope, left to its local default"
        for device in batteries
        if device not in usable
    ]
    notes.extend(
        f"battery {device.id}: one battery per node is planned, left to its local default"
        for device in usable[1:]
    )
    if not usable:
        return None, tuple(notes)
    device = usable[0]
    limits = device.envelope
    capacity_kwh = float(limits.capacity_wh or 0) / 1000
    soc_min_pct = float(limits.soc_min_pct or 0)
    soc_max_pct = float(100 if limits.soc_max_pct is None else limits.soc_max_pct)
    soc_pct = state.soc_pct
    if soc_pct is None:
        notes.append(f"battery {device.id}: state of charge unknown, planned from its minimum")
        soc_pct = soc_min_pct
    battery = {
        "capacity_kwh": capacity_kwh,
        "soc_kwh": round(min(max(soc_pct, 0.0), 100.0) * capacity_kwh / 100, 4),
        "soc_min_kwh": soc_min_pct * capacity_kwh / 100,
        "soc_max_kwh": soc_max_pct * capacity_kwh / 100,
        "charge_kw": (limits.max_charge_w or 0) / 1000,
        "discharge_kw": (limits.max_discharge_w or 0) / 1000,
    }
    return (battery, device.id), tuple(notes)


def _ev(
    state: NodePlanningState, session: EvSession | None, grid: PlanGrid
) -> tuple[tuple[dict[str, Any], str] | None, tuple[str, ...]]:
    """The planner's EV for the node's first EV charger and its session in the inputs (with
    the charger's current range at 230 V), or notes on why the session is not planned."""
    if session is None:
        return None, ()
    chargers = [d for d in state.descriptor.devices if d.kind is DeviceKind.EV_CHARGER]
    if not chargers:
        return None, ("an EV session was given but the node has no EV charger",)
    charger = chargers[0]
    low_a, high_a = ev_current_range(charger.envelope)
    if not high_a:
        return None, (f"EV charger {charger.id}: no ev_current_max_a in its envelope, not planned",)
    if session.departure <= grid.start:
        return None, (f"the EV session ended at {session.departure.isoformat()}",)
    max_kw = high_a * EV_VOLTS / 1000
    ev = {
        "arrival": max(session.arrival, grid.start).isoformat(),
        "departure": session.departure.isoformat(),
        "energy_kwh": session.energy_kwh,
        "max_kw": max_kw,
        "min_kw": min(low_a * EV_VOLTS / 1000, max_kw),
    }
    return (ev, charger.id), ()


def plan_document(
    scenario: Scenario,
    planned: HomePlan,
    device_ids: Mapping[str, str],
    grid: PlanGrid,
    tolerance: Tolerance | None,
) -> Plan | NodeDispatch:
    """The protocol plan for the node: the planner's document with the node's own device ids,
    an id unique to this dispatch and the tolerance that tells the node when to report."""
    home = scenario.homes[0]
    try:
        document = to_jsonable(to_plan_document(scenario, home, planned, grid.issued))
    except PlanDocumentError as error:
        return NodeDispatch(home.id, status=str(planned.status), problems=tuple(error.problems))
    document["id"] = dispatch_plan_id(home.id, grid.issued)
    document["devices"] = {
        device_ids.get(name, name): device for name, device in document["devices"].items()
    }
    document["tolerance"] = to_jsonable(tolerance or DEFAULT_TOLERANCE)
    parsed = parse(Plan, document)
    if parsed.document is None:
        problems = tuple(str(problem) for problem in parsed.problems)
        return NodeDispatch(home.id, status=str(planned.status), problems=problems)
    return parsed.document


def dispatch_plan_id(node: str, issued: datetime) -> str:
    """`plan-20261122T103000.123456Z-<hash of the node>`: a new id for every dispatch, so a
    re-plan in the same slot supersedes the plan before it."""
    digest = hashlib.sha256(node.encode()).hexdigest()[:10]
    return f"plan-{issued.astimezone(UTC):%Y%m%dT%H%M%S.%f}Z-{digest}"


def nodes_to_replan(event: Mapping[str, Any]) -> tuple[str, ...]:
    """The nodes a shadow documents rule event says should be planned again now: the event's
    node when, compared with the previous state, it reports a new deviation, a new re-plan
    request, a new or changed descriptor, or acknowledges that its plan expired."""
    node, _ = thing_name(event)
    if node is None:
        return ()
    now_reported = _reported(event, "current")
    before = _reported(event, "previous")
    reasons = (
        _new_deviation(now_reported, before),
        _changed(now_reported, before, "replan_requested"),
        _changed(now_reported, before, "node"),
        _newly_expired(now_reported, before),
    )
    return (node,) if any(reasons) else ()


def replan_reasons(event: Mapping[str, Any]) -> tuple[str, ...]:
    """Why `nodes_to_replan` re-plans the event's node (for logs): `deviation`,
    `replan_requested`, `descriptor`, `expired`."""
    now_reported = _reported(event, "current")
    before = _reported(event, "previous")
    named = {
        "deviation": _new_deviation(now_reported, before),
        "replan_requested": _changed(now_reported, before, "replan_requested"),
        "descriptor": _changed(now_reported, before, "node"),
        "expired": _newly_expired(now_reported, before),
    }
    return tuple(name for name, found in named.items() if found)


def _reported(event: Mapping[str, Any], which: str) -> Mapping[str, Any]:
    document = event.get(which)
    state = document.get("state") if isinstance(document, Mapping) else None
    reported = state.get("reported") if isinstance(state, Mapping) else None
    return reported if isinstance(reported, Mapping) else {}


def _new_deviation(now: Mapping[str, Any], before: Mapping[str, Any]) -> bool:
    """A trajectory is listed in `telemetry.deviations` that was not listed before."""
    return bool(_deviations(now) - _deviations(before))


def _deviations(reported: Mapping[str, Any]) -> set[str]:
    telemetry = reported.get("telemetry")
    listed = telemetry.get("deviations") if isinstance(telemetry, Mapping) else None
    if not isinstance(listed, list):
        return set()
    return {item for item in listed if isinstance(item, str)}


def _changed(now: Mapping[str, Any], before: Mapping[str, Any], key: str) -> bool:
    return now.get(key) is not None and now.get(key) != before.get(key)


def _newly_expired(now: Mapping[str, Any], before: Mapping[str, Any]) -> bool:
    ack = now.get("plan")
    if not isinstance(ack, Mapping) or ack.get("status") != PlanStatus.EXPIRED.value:
        return False
    return ack != before.get("plan")
