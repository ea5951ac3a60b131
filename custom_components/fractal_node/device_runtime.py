"""The node's Modbus devices at run time: one coordinator per device and poll group.

The library does the work: one connection per gateway (`GatewayPool`, one per entry), merged
reads, back-off, one log line when a device stops answering and one when it is back. Here a
device that stays down raises a repair issue, removed when it answers again, and its power
reading feeds the node's power flows by the device's role.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .const import CONF_ROLE, DOMAIN, LOGGER, MODBUS_TIMEOUT, SUBENTRY_MODBUS_DEVICE
from .fractal.devices import (
    DeviceUnavailable,
    GatewayPool,
    ModbusDeviceError,
    PolledDevice,
    Reading,
)
from .modbus import build_device, endpoint_of

# A device down this long gets a repair issue; shorter outages (a meter rebooting) do not.
DEVICE_DOWN_ISSUE_AFTER: Final = timedelta(minutes=15)
ISSUE_DEVICE_UNAVAILABLE: Final = "device_unavailable"
# Readings that give a device's power in W: maps use "power"; SunSpec inverters name theirs
# after the model.
POWER_READINGS: Final = (
    "power",
    "inverter_single_phase_w",
    "inverter_split_phase_w",
    "inverter_three_phase_w",
)


def new_pool() -> GatewayPool:
    """The entry's gateways: one connection per address, shared by its devices."""
    return GatewayPool(timeout=MODBUS_TIMEOUT)


@dataclass
class NodeDevice:
    """One Modbus device of the node: its subentry, the library device and its coordinators."""

    subentry: ConfigSubentry
    device: PolledDevice
    coordinators: dict[str, DeviceCoordinator] = field(default_factory=dict)

    @property
    def role(self) -> str:
        return str(self.subentry.data[CONF_ROLE])

    @property
    def available(self) -> bool:
        return self.device.availability.available

    def reading(self, name: str) -> Reading | None:
        """The latest reading of `name` from whichever group polls it."""
        for coordinator in self.coordinators.values():
            if coordinator.data and name in coordinator.data:
                return coordinator.data[name]
        return None

    def power(self) -> float | None:
        """The device's power in W now, or None (down, not read yet, or garbage)."""
        for name in POWER_READINGS:
            reading = self.reading(name)
            if reading is not None:
                value = reading.value if self.available else None
                return float(value) if isinstance(value, int | float) else None
        return None

    @callback
    def async_add_listener(self, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update` whenever any of its poll groups brings new readings."""
        removers = [c.async_add_listener(update) for c in self.coordinators.values()]

        @callback
        def remove() -> None:
            for remover in removers:
                remover()

        return remove


class DeviceCoordinator(DataUpdateCoordinator[dict[str, Reading]]):
    """Polls one group of one device on the group's interval from the map."""

    def __init__(
        self, hass: HomeAssistant, entry: ConfigEntry, node_device: NodeDevice, group: str
    ) -> None:
        interval = node_device.device.poll_groups[group]
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{node_device.subentry.title} {group}",
            update_interval=timedelta(seconds=interval),
            always_update=False,  # readings are frozen dataclasses: equal means unchanged
        )
        self.node_device = node_device
        self.group = group

    async def _async_update_data(self) -> dict[str, Reading]:
        try:
            readings = await self.node_device.device.poll(self.group)
        except DeviceUnavailable:
            # The library logged it (once); entities follow the device's availability. Not
            # raising UpdateFailed keeps Home Assistant from logging it once more per group.
            readings = {}
        _update_down_issue(self.hass, self.config_entry, self.node_device)
        return readings


async def async_start_devices(
    hass: HomeAssistant, entry: ConfigEntry, pool: GatewayPool
) -> dict[str, NodeDevice]:
    """Build every device subentry's device and read each group once, by subentry id."""
    devices: dict[str, NodeDevice] = {}
    for subentry_id, subentry in device_subentries(entry).items():
        node_device = NodeDevice(subentry, await _built(pool, subentry))
        for group in node_device.device.poll_groups:
            coordinator = DeviceCoordinator(hass, entry, node_device, group)
            await coordinator.async_config_entry_first_refresh()
            node_device.coordinators[group] = coordinator
        devices[subentry_id] = node_device
    return devices


def device_subentries(entry: ConfigEntry) -> dict[str, ConfigSubentry]:
    """The entry's Modbus devices, by subentry id."""
    return {
        subentry_id: subentry
        for subentry_id, subentry in entry.subentries.items()
        if subentry.subentry_type == SUBENTRY_MODBUS_DEVICE
    }


async def _built(pool: GatewayPool, subentry: ConfigSubentry) -> PolledDevice:
    # A stored map that no longer loads fails earlier, in the node's configuration.
    try:
        return await build_device(pool.get(endpoint_of(subentry.data)), subentry.data)
    except ModbusDeviceError as err:
        # Only a SunSpec device is read at set-up (its models are discovered again); a node
        # whose inverter is off at start-up retries rather than losing the device.
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="device_not_ready",
            translation_placeholders={"name": subentry.title, "reason": str(err)},
        ) from err


def down_issue_id(entry: ConfigEntry, subentry_id: str) -> str:
    return f"{ISSUE_DEVICE_UNAVAILABLE}_{entry.entry_id}_{subentry_id}"


def _update_down_issue(
    hass: HomeAssistant, entry: ConfigEntry | None, node_device: NodeDevice
) -> None:
    assert entry is not None  # coordinators are made for an entry
    issue_id = down_issue_id(entry, node_device.subentry.subentry_id)
    availability = node_device.device.availability
    down_for = availability.down_for(time.monotonic())
    if down_for < DEVICE_DOWN_ISSUE_AFTER.total_seconds() or availability.available:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_DEVICE_UNAVAILABLE,
        translation_placeholders={
            "name": node_device.subentry.title,
            "node": entry.title,
            "minutes": str(int(down_for // 60)),
            "reason": availability.reason or "",
        },
    )
