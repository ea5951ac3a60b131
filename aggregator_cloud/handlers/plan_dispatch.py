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

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from fractal.protocol import NodeDescriptor

from aggregator_cloud.planning.inputs import PlanningInputs

PLAN_SHADOW = "plan"


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
class DispatchResult:
    """What one `dispatch_plans` call did, node by node (like a HandlerResult, JSON-ready)."""

    nodes: tuple[NodeDispatch, ...] = ()
    problems: tuple[str, ...] = ()
    """Problems of the call as a whole (e.g. inputs that cover no time from now)."""

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
) -> DispatchResult:
    """Plan each of `node_ids` from `now` (the current slot's start) and write its plan."""
    raise NotImplementedError  # next commit: the signature is fixed for the Lambda wrappers


def nodes_to_replan(event: Mapping[str, Any]) -> tuple[str, ...]:
    """The nodes a shadow documents rule event says should be planned again now."""
    raise NotImplementedError  # next commit
