"""A Zigbee clamp meter or smart plug as a smart meter of the node, through ZHA's radio.

ZHA owns the stick (one program per stick) and has paired the device; the node reads the
device's Metering and Electrical Measurement clusters through ZHA's zigpy application
(`fractal.zigbee.ZigbeeMeter`): every attribute report becomes a `MeterReading` of the meter's
`MeterSource` (glitch filter, sensors, power flows, silence). The node also polls the values
every minute, so a meter that reports only on change still counts as heard, and a device out of
range falls silent. When ZHA reloads (a new zigpy application), the next poll follows the new
device object.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util
from zigpy.types import EUI64  # type: ignore[import-untyped]

from .fractal.meters import MeterReading, Quantity
from .fractal.zigbee import METERING, ScalingError, ZigbeeMeter, ZigbeeUnavailable
from .meter_entities import MeterSource

_LOGGER = logging.getLogger(__name__)

SUBENTRY_ZIGBEE_METER: Final = "zigbee_meter"
CONF_IEEE: Final = "ieee"
CONF_CLUSTERS: Final = "clusters"
CONF_MANUFACTURER: Final = "manufacturer"
CONF_MODEL: Final = "model"
ZHA_DOMAIN: Final = "zha"
POLL_INTERVAL: Final = timedelta(minutes=1)
PROBLEM_NO_ZHA: Final = "ZHA is not loaded (the node reads Zigbee meters through ZHA's radio)"
PROBLEM_NOT_PAIRED: Final = "the device is no longer in ZHA's Zigbee network"
LINK_QUANTITIES: Final = frozenset(
    {Quantity.POWER, Quantity.LINK_QUALITY, Quantity.SIGNAL_STRENGTH}
)


def zigbee_unique_id(ieee: str) -> str:
    return f"zigbee_{ieee.lower()}"


def zigbee_quantities(clusters: list[int]) -> frozenset[Quantity]:
    """Power and the link from any meter; the energy counters from a Metering cluster."""
    if METERING in clusters:
        return LINK_QUANTITIES | {Quantity.IMPORT_ENERGY, Quantity.EXPORT_ENERGY}
    return LINK_QUANTITIES


def zha_application(hass: HomeAssistant) -> Any | None:
    """ZHA's zigpy application controller while ZHA is loaded, else None."""
    if not hass.config_entries.async_loaded_entries(ZHA_DOMAIN):
        return None
    # Imported here: ZHA's own requirements are installed only where ZHA is set up.
    from homeassistant.components.zha.helpers import get_zha_gateway

    try:
        return get_zha_gateway(hass).application_controller
    except ValueError:  # ZHA's entry is loaded but its gateway is gone (unloading)
        return None


def zha_stick_paths(hass: HomeAssistant) -> list[str]:
    """The serial ports (or socket:// coordinators) of every ZHA entry, loaded or not."""
    paths = []
    for entry in hass.config_entries.async_entries(ZHA_DOMAIN):
        device = entry.data.get("device")
        if isinstance(device, Mapping) and isinstance(device.get("path"), str):
            paths.append(device["path"])
    return paths


async def async_start_zigbee_meter(
    hass: HomeAssistant, entry: ConfigEntry, subentry: ConfigSubentry
) -> MeterSource:
    data = subentry.data
    source = MeterSource(
        hass,
        entry,
        subentry,
        quantities=zigbee_quantities(list(data[CONF_CLUSTERS])),
        manufacturer=str(data.get(CONF_MANUFACTURER) or "Zigbee"),
        model=str(data.get(CONF_MODEL) or "Zigbee meter"),
    )
    follower = ZigbeeFollower(hass, source, str(data[CONF_IEEE]))
    entry.async_on_unload(follower.stop)
    entry.async_on_unload(async_track_time_interval(hass, follower.async_poll, POLL_INTERVAL))
    entry.async_create_background_task(
        hass, follower.async_poll(), name=f"zigbee meter {data[CONF_IEEE]}"
    )
    return source


class ZigbeeFollower:
    """Keeps one meter's `MeterSource` fed from the device in ZHA's network."""

    def __init__(self, hass: HomeAssistant, source: MeterSource, ieee: str) -> None:
        self._hass = hass
        self._source = source
        self._ieee = EUI64.convert(ieee)
        self._device: Any | None = None
        self._meter: ZigbeeMeter | None = None
        self._unsubscribe: CALLBACK_TYPE | None = None
        self._push_pending = False
        self._answering = True  # until a read says otherwise (not logged as "again")

    async def async_poll(self, _now: datetime | None = None) -> None:
        meter = self._attach()
        if meter is None:
            return
        try:
            await meter.async_read_values()
        except ZigbeeUnavailable as error:
            if self._answering:  # logged once per outage, as every device of the node
                _LOGGER.warning("%s stopped answering: %s", self._source.subentry.title, error)
            self._answering = False
            self._source.async_set_problem(str(error))
            return
        except ScalingError as error:
            # The device's own configuration: no reading can be trusted until it changes.
            if self._source.problem != str(error):
                _LOGGER.warning("%s: %s; no readings", self._source.subentry.title, error)
            self._source.async_set_problem(str(error))
            return
        if not self._answering:
            _LOGGER.info("%s answers again", self._source.subentry.title)
        self._answering = True
        self._source.async_set_problem(meter.problem)

    @callback
    def stop(self) -> None:
        if self._meter is not None:
            self._meter.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._device = self._meter = self._unsubscribe = None

    def _attach(self) -> ZigbeeMeter | None:
        """The meter on ZHA's current device object (a reloaded ZHA has new ones)."""
        application = zha_application(self._hass)
        device = None if application is None else application.devices.get(self._ieee)
        if device is None:
            self.stop()
            self._source.async_set_problem(
                PROBLEM_NO_ZHA if application is None else PROBLEM_NOT_PAIRED
            )
            return None
        if device is not self._device:
            self.stop()
            self._meter = ZigbeeMeter(device)
            self._meter.start()
            self._unsubscribe = self._meter.add_listener(self._updated)
            self._device = device
        return self._meter

    @callback
    def _updated(self) -> None:
        """One push per burst: a report or a read answer updates several attributes at once."""
        if not self._push_pending:
            self._push_pending = True
            self._hass.loop.call_soon(self._push)

    @callback
    def _push(self) -> None:
        self._push_pending = False
        meter = self._meter
        if meter is None or not meter.scaled:
            return
        reading = meter.reading()
        self._source.async_push(
            MeterReading(
                timestamp=dt_util.utcnow(),
                power_w=reading.power_w,
                import_energy_wh=reading.import_wh,
                export_energy_wh=reading.export_wh,
                link_quality=meter.link_quality,
                signal_strength_dbm=meter.signal_strength,
            )
        )
