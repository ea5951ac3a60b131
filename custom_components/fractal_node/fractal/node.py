"""The node runtime as Home Assistant sees it: configuration in, a frozen state out.

This is the HA-free core the integration's coordinator wraps. In this first version the node
has no devices and no aggregator link yet:

* power flows are ``None`` (the integration shows them unavailable) until devices exist;
* a standalone node reports link status ``standalone``;
* a linked node (local aggregator or AWS IoT) reports ``disconnected`` with a reason, because
  the link itself (awsiotsdk shadow client) arrives in a later issue. It must not pretend to be
  connected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from pydantic import TypeAdapter, ValidationError

from . import __version__
from .protocol import LinkMode, NodeDescriptor
from .protocol.types import NodeId, ShortText
from .tags import validate_tags

__all__ = [
    "LINK_NOT_AVAILABLE",
    "LinkMode",
    "LinkStatus",
    "NodeConfig",
    "NodePlanStatus",
    "NodeRuntime",
    "NodeState",
    "PowerFlows",
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


LINK_NOT_AVAILABLE = "the aggregator link is not available in this version of Fractal Node"


@dataclass(frozen=True)
class NodeConfig:
    node_id: str
    name: str
    link: LinkMode
    tags: Mapping[str, str] = field(default_factory=dict)

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
        """The node descriptor the node publishes; no devices until devices exist."""
        return NodeDescriptor(
            node=self.config.node_id,
            name=self.config.name,
            tags=dict(self.config.tags),
            software=__version__,
            link=self.config.link,
        )

    def add_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener`` with each new state; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, state: NodeState) -> None:
        """Replace the state and notify listeners (the link and executor will call this, in
        the thread that owns the runtime: Home Assistant's event loop)."""
        self._state = state
        for listener in list(self._listeners):
            listener(state)


def _initial_state(link: LinkMode) -> NodeState:
    if link is LinkMode.STANDALONE:
        return NodeState(LinkStatus.STANDALONE, NodePlanStatus.NONE)
    return NodeState(LinkStatus.DISCONNECTED, NodePlanStatus.NONE, link_reason=LINK_NOT_AVAILABLE)
