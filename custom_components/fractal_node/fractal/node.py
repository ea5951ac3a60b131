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


class LinkMode(StrEnum):
    """How the node is linked to an aggregator."""

    STANDALONE = "standalone"
    LOCAL = "local"
    AWS = "aws"


class LinkStatus(StrEnum):
    STANDALONE = "standalone"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    ERROR = "error"


class PlanStatus(StrEnum):
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
    plan_status: PlanStatus
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

    def add_listener(self, listener: StateListener) -> Callable[[], None]:
        """Call ``listener`` with each new state; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, state: NodeState) -> None:
        """Replace the state (the link and executor will call this) and notify listeners."""
        self._state = state
        for listener in list(self._listeners):
            listener(state)


def _initial_state(link: LinkMode) -> NodeState:
    if link is LinkMode.STANDALONE:
        return NodeState(LinkStatus.STANDALONE, PlanStatus.NONE)
    return NodeState(LinkStatus.DISCONNECTED, PlanStatus.NONE, link_reason=LINK_NOT_AVAILABLE)
