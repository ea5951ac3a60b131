"""The coordinator: Home Assistant's view of the HA-free node runtime.

The runtime pushes each new state (``NodeRuntime.publish``); nothing is polled, so there is no
update interval. The first refresh just reads the runtime's current state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .const import DOMAIN, LOGGER
from .device_runtime import NodeDevice, new_pool
from .executor_runtime import NodeExecutor
from .fractal.devices import GatewayPool
from .fractal.node import NodeRuntime, NodeState
from .fractal.tls import CertificateInfo
from .node_link import NodeLink
from .power_sources import PowerSource
from .standalone import StandalonePlanner


@dataclass
class FractalNodeData:
    """What a loaded entry holds (``entry.runtime_data``)."""

    runtime: NodeRuntime
    coordinator: FractalNodeCoordinator
    certificate: CertificateInfo | None  # None for a standalone node
    pool: GatewayPool = field(default_factory=new_pool)  # one connection per Modbus gateway
    devices: dict[str, NodeDevice] = field(default_factory=dict)  # by subentry id
    # Smart meters and other non-Modbus devices feeding the power flows, by subentry id.
    meters: dict[str, PowerSource] = field(default_factory=dict)
    link: NodeLink | None = None  # None for a standalone node
    executor: NodeExecutor | None = None  # set once set-up has the devices and the link
    standalone: StandalonePlanner | None = None  # when planning entities are picked (options)


type FractalNodeConfigEntry = ConfigEntry[FractalNodeData]


class FractalNodeCoordinator(DataUpdateCoordinator[NodeState]):
    config_entry: FractalNodeConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: FractalNodeConfigEntry, runtime: NodeRuntime
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {runtime.config.node_id}",
            update_interval=None,
            always_update=False,  # states are frozen dataclasses: equal means unchanged
        )
        self.runtime = runtime

    async def _async_update_data(self) -> NodeState:
        return self.runtime.state()
