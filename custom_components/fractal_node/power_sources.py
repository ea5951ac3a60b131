"""What feeds the node's power flows: any device kind with a role and a power reading.

Modbus devices, smart meters (Glow CAD, Glowmarkt, Zigbee) and whatever comes next all satisfy
`PowerSource`; set-up recomputes the node's flows (grid, PV, battery) whenever one changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from homeassistant.core import CALLBACK_TYPE, callback

from .fractal.node import NodeRuntime, power_flows


class PowerSource(Protocol):
    """One device of the node as the power flows see it."""

    @property
    def role(self) -> str:
        """The installer's role for it (`fractal.node` roles: grid_meter, pv_inverter, ...)."""

    def power(self) -> float | None:
        """Its power in W now (sign by role, as DESIGN §3), or None when unknown."""

    def async_add_listener(self, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update` whenever its readings change; returns the unsubscribe."""


@callback
def async_feed_power_flows(
    runtime: NodeRuntime, sources: Iterable[PowerSource]
) -> list[CALLBACK_TYPE]:
    """Recompute the node's power flows now and whenever a source changes; the unsubscribes."""
    sources = list(sources)

    @callback
    def update() -> None:
        runtime.set_power(power_flows((s.role, s.power()) for s in sources))

    update()
    return [source.async_add_listener(update) for source in sources]
