"""The node runtime as Home Assistant sees it: configuration in, a frozen state out.

This is the HA-free core the integration's coordinator wraps:

* power flows are computed from the devices' power readings by their roles (`power_flows`),
  and are ``None`` (the integration shows them unavailable) while no device measures them;
* a standalone node reports link status ``standalone``;
* a linked node (local aggregator or AWS IoT) starts ``connecting``; its `ShadowLink`'s status
  (`link_changed`) then says ``connected``, ``disconnected`` or ``error`` with the reason, and
  the acknowledgement it last wrote gives the plan status;
* `sample` is the telemetry reading the node records every few seconds (its power flows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from pydantic import TypeAdapter, ValidationError

from . import __version__
from .link.shadow_link import LinkState
from .link.shadow_link import LinkStatus as LinkReport
from .protocol import Device, LinkMode, NodeDescriptor
from .protocol.types import NodeId, ShortText
from .tags import validate_tags

__all__ = [
    "LinkMode",
    "LinkStatus",
    "NodeConfig",
    "NodePlanStatus",
    "NodeRuntime",
    "NodeState",
    "PowerFlows",
    "power_flows",
    "valid_node_id",
    "valid_node_name",
]

_NODE_ID = TypeAdapter[str](NodeId)
_NODE_NAME = TypeAdapter[str](ShortText)


def valid_node_id(value: str) -> bool:
    """An AWS IoT thing name, as the protocol requires: ``^[a-zA-Z0-9:_-]{1,128}$``."""
    return _is_valid(_NODE_ID, value)


def valid_node_name(value: str) -> bool:
    """1-64 characters, the protocol's limit for a descriptor's name."""
    return _is_valid(_NODE_NAME, value)


def _is_valid(adapter: TypeAdapter[str], value: str) -> bool:
    try:
        adapter.validate_python(value, strict=True)
    except ValidationError:
        return False
    return True


class LinkStatus(StrEnum):
    STANDALONE = "standalone"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    ERROR = "error"


class NodePlanStatus(StrEnum):
    """The protocol's plan statuses, plus ``none`` (no plan yet) and ``default`` (running the
    local default plan after expiry or loss of the aggregator)."""

    NONE = "none"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXECUTING = "executing"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    DEFAULT = "default"


_LINK_STATES: Mapping[LinkState, LinkStatus] = MappingProxyType(
    {
        LinkState.CONNECTING: LinkStatus.CONNECTING,
        LinkState.CONNECTED: LinkStatus.CONNECTED,
        LinkState.DISCONNECTED: LinkStatus.DISCONNECTED,
        LinkState.ERROR: LinkStatus.ERROR,
        LinkState.STOPPED: LinkStatus.DISCONNECTED,
    }
)


@dataclass(frozen=True)
class NodeConfig:
    node_id: str
    name: str
    link: LinkMode
    tags: Mapping[str, str] = field(default_factory=dict)
    devices: tuple[Device, ...] = ()  # as the installer added them, with their envelopes

    def __post_init__(self) -> None:
        # Frozen all the way down: nobody can change the tags behind the runtime's back.
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))

    def problems(self) -> list[str]:
        """Why this configuration cannot describe a node (empty when it can)."""
        problems = [f"tags: {problem}" for problem in validate_tags(self.tags)]
        if not valid_node_id(self.node_id):
            problems.insert(0, f"node id {self.node_id!r} is not a valid AWS IoT thing name")
        if not valid_node_name(self.name):
            problems.insert(0, "the name must be 1 to 64 characters")
        return problems


@dataclass(frozen=True)
class PowerFlows:
    """Node power flows in W; ``None`` while no device measures them.

    Signs follow the protocol: grid > 0 imports, battery > 0 charges, PV and load >= 0.
    """

    grid_w: float | None = None
    pv_w: float | None = None
    battery_w: float | None = None
    load_w: float | None = None


# Device roles whose power reading feeds each flow (the installer picks the role).
GRID_ROLES = frozenset({"grid_meter"})
PV_ROLES = frozenset({"pv_meter", "pv_inverter"})
BATTERY_ROLES = frozenset({"battery"})


def power_flows(powers: Iterable[tuple[str, float | None]]) -> PowerFlows:
    """The node's flows from (role, power W or None if unknown now) of each device.

    A flow without any device of its roles is None; with a device whose power is unknown it is
    None too. Load = grid + PV - battery needs the grid; a flow without devices counts as 0
    there (a home without a battery), an unknown one makes the load unknown.
    """
    by_role: dict[str, list[float | None]] = {}
    for role, power in powers:
        by_role.setdefault(role, []).append(power)
    grid = _total(by_role, GRID_ROLES)
    pv = _total(by_role, PV_ROLES, floor=0.0)  # an inverter's standby draw is not generation
    battery = _total(by_role, BATTERY_ROLES)
    known = all(
        flow is not None or not (roles & by_role.keys())
        for flow, roles in ((pv, PV_ROLES), (battery, BATTERY_ROLES))
    )
    load = None
    if grid is not None and known:
        load = max(0.0, grid + (pv or 0.0) - (battery or 0.0))
    return PowerFlows(grid_w=grid, pv_w=pv, battery_w=battery, load_w=load)


def _total(
    by_role: Mapping[str, list[float | None]], roles: frozenset[str], floor: float | None = None
) -> float | None:
    powers = [power for role in roles for power in by_role.get(role, [])]
    if not powers or any(power is None for power in powers):
        return None
    return sum(
        power if floor is None else max(floor, power) for power in powers if power is not None
    )


@dataclass(frozen=True)
class NodeState:
    link_status: LinkStatus
    plan_status: NodePlanStatus
    link_reason: str | None = None
    last_telemetry: datetime | None = None
    power: PowerFlows = PowerFlows()


StateListener = Callable[[NodeState], None]


class NodeRuntime:
    """Holds the node's current state and tells listeners when it changes."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self._listeners: list[StateListener] = []
        self._state = _initial_state(config.link)

    def state(self) -> NodeState:
        return self._state

    def descriptor(self) -> NodeDescriptor:
        """The node descriptor the node publishes: who it is, its devices and their limits."""
        return NodeDescriptor(
            node=self.config.node_id,
            name=self.config.name,
            tags=dict(self.config.tags),
            software=__version__,
            link=self.config.link,
            devices=self.config.devices,
        )

    def add_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener`` with each new state; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def set_power(self, power: PowerFlows) -> None:
        """Publish new power flows, keeping the rest of the state."""
        if power != self._state.power:
            self.publish(replace(self._state, power=power))

    def link_changed(self, report: LinkReport) -> None:
        """The link's new status: connection state and reason, and the plan status from the
        acknowledgement it last wrote (a stopped link reads as disconnected)."""
        plan = self._state.plan_status
        if report.plan_ack is not None:
            plan = NodePlanStatus(report.plan_ack.status.value)
        reason = report.reason
        if report.state is LinkState.STOPPED:
            reason = "stopped"
        changed = replace(
            self._state,
            link_status=_LINK_STATES[report.state],
            link_reason=reason,
            plan_status=plan,
        )
        if changed != self._state:
            self.publish(changed)

    def set_plan_status(self, status: NodePlanStatus) -> None:
        if status is not self._state.plan_status:
            self.publish(replace(self._state, plan_status=status))

    def sample(self, now: datetime, soc_pct: float | None = None) -> dict[str, object]:
        """The telemetry reading for `now` (a protocol Reading without `seq`): the power flows
        the node knows and its batteries' state of charge, unknown ones left out. ``ts`` in
        UTC, ISO-8601."""
        power = self._state.power
        flows = {
            "grid_w": power.grid_w,
            "pv_w": power.pv_w,
            "battery_w": power.battery_w,
            "load_w": power.load_w,
        }
        sample: dict[str, object] = {"ts": now.astimezone(UTC).isoformat()}
        sample.update({name: value for name, value in flows.items() if value is not None})
        if soc_pct is not None:
            sample["soc_pct"] = soc_pct
        return sample

    def telemetry_recorded(self, at: datetime) -> None:
        self.publish(replace(self._state, last_telemetry=at))

    def publish(self, state: NodeState) -> None:
        """Replace the state and notify listeners (the link and executor will call this, in
        the thread that owns the runtime: Home Assistant's event loop)."""
        self._state = state
        for listener in list(self._listeners):
            listener(state)


def _initial_state(link: LinkMode) -> NodeState:
    if link is LinkMode.STANDALONE:
        return NodeState(LinkStatus.STANDALONE, NodePlanStatus.NONE)
    return NodeState(LinkStatus.CONNECTING, NodePlanStatus.NONE)
