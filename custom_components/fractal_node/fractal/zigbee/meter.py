"""One Zigbee clamp meter or smart plug, read through zigpy whoever owns the radio.

The same object serves any zigpy application: ZHA's (ZHA owns the stick) or one of our own.
It reads the clusters' scaling attributes once (zigpy's attribute cache first: ZHA has usually
read them at pairing), reads the values, and then follows attribute reports as they arrive;
every update is heard by its listeners (silence is the listeners' business).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from zigpy.exceptions import ZigbeeException  # type: ignore[import-untyped]
from zigpy.zcl.clusters.homeautomation import (  # type: ignore[import-untyped]
    ElectricalMeasurement,
)
from zigpy.zcl.clusters.smartenergy import Metering  # type: ignore[import-untyped]

from .scaling import (
    ELECTRICAL_SCALING,
    ELECTRICAL_VALUES,
    METERING_SCALING,
    METERING_VALUES,
    ElectricalScales,
    MeteringScales,
    ScalingError,
    ZigbeeReading,
    reading_of,
)

LOGGER = logging.getLogger(__name__)

METERING: int = Metering.cluster_id
ELECTRICAL_MEASUREMENT: int = ElectricalMeasurement.cluster_id
METER_CLUSTERS = (METERING, ELECTRICAL_MEASUREMENT)

# The ZCL's "no valid measurement" value of each attribute's type (int24s 0x800000 is the
# -8388.608 kW some meters send when they have nothing): never a reading.
NON_VALUES: dict[str, int] = {
    "instantaneous_demand": -0x800000,
    "current_summ_delivered": 0xFFFFFFFFFFFF,
    "current_summ_received": 0xFFFFFFFFFFFF,
    "active_power": -0x8000,
    "rms_voltage": 0xFFFF,
    "rms_current": 0xFFFF,
}
# Instantaneous values become unknown on a non-value; cumulative ones keep the last good one.
CUMULATIVE = frozenset({"current_summ_delivered", "current_summ_received"})


class ZigbeeUnavailable(Exception):
    """The device did not answer (out of range, unplugged, asleep)."""


class NotAMeter(ValueError):
    """The device has neither a Metering nor an Electrical Measurement server cluster."""


@dataclass(frozen=True)
class MeterCandidate:
    """A device offered in the flow: what the installer recognises it by."""

    ieee: str
    manufacturer: str
    model: str
    clusters: tuple[int, ...]  # which of METER_CLUSTERS it has

    @property
    def title(self) -> str:
        name = " ".join(part for part in (self.manufacturer, self.model) if part)
        return f"{name or 'Zigbee device'} ({self.ieee})"


def meter_cluster(device: Any, cluster_id: int) -> Any | None:
    """The device's first server (input) cluster with this id, on any endpoint but ZDO."""
    for endpoint_id, endpoint in device.endpoints.items():
        if endpoint_id != 0 and cluster_id in endpoint.in_clusters:
            return endpoint.in_clusters[cluster_id]
    return None


def meter_candidates(application: Any) -> list[MeterCandidate]:
    """The devices of a zigpy application that measure electricity, coordinator excluded."""
    found = []
    for device in application.devices.values():
        if device.nwk == 0x0000:
            continue
        clusters = tuple(c for c in METER_CLUSTERS if meter_cluster(device, c) is not None)
        if clusters:
            found.append(
                MeterCandidate(
                    ieee=str(device.ieee),
                    manufacturer=str(device.manufacturer or ""),
                    model=str(device.model or ""),
                    clusters=clusters,
                )
            )
    return sorted(found, key=lambda c: c.ieee)


class _ClusterListener:
    """zigpy calls `attribute_updated` for reports and read responses alike."""

    def __init__(self, on_update: Callable[[int, Any], None]) -> None:
        self._on_update = on_update

    def attribute_updated(self, attrid: int, value: Any, timestamp: Any) -> None:
        self._on_update(attrid, value)


class ZigbeeMeter:
    """A device's Metering and Electrical Measurement clusters as one reading."""

    def __init__(self, device: Any) -> None:
        self._metering = meter_cluster(device, METERING)
        self._electrical = meter_cluster(device, ELECTRICAL_MEASUREMENT)
        if self._metering is None and self._electrical is None:
            raise NotAMeter(f"{device.ieee} has no Metering or Electrical Measurement cluster")
        self.ieee = str(device.ieee)
        self._device = device
        self._raw: dict[int, dict[str, Any]] = {METERING: {}, ELECTRICAL_MEASUREMENT: {}}
        self._metering_scales: MeteringScales | None = None
        self._electrical_scales: ElectricalScales | None = None
        self.problem: str | None = None  # why readings cannot be scaled, for the installer
        self._listeners: list[Callable[[], None]] = []
        self._attached: list[tuple[Any, _ClusterListener]] = []

    def start(self) -> None:
        """Follow the clusters' attribute updates (reports and read responses)."""
        for cluster_id, cluster in self._clusters().items():
            listener = _ClusterListener(functools.partial(self._on_update, cluster_id))
            cluster.add_listener(listener)
            self._attached.append((cluster, listener))

    def stop(self) -> None:
        for cluster, listener in self._attached:
            cluster.remove_listener(listener)
        self._attached.clear()

    async def async_read_values(self) -> None:
        """Read the values again (the scaling too, until it is known): a poll."""
        if not self.scaled:
            await self.async_read()
            return
        if self._metering is not None:
            await _read(self._metering, METERING_VALUES, cached=False)
        if self._electrical is not None:
            await _read(self._electrical, ELECTRICAL_VALUES, cached=False)

    async def async_read(self) -> None:
        """Read the scaling (cached values first) and the values themselves from the device.

        Raises ZigbeeUnavailable when it does not answer and ScalingError when its scaling
        attributes make no sense (a divisor of 0); what was known before stays.
        """
        metering, electrical = self._metering, self._electrical
        try:
            if metering is not None:
                attrs = await _read(metering, METERING_SCALING, cached=True)
                self._metering_scales = MeteringScales.from_attributes(attrs)
                await _read(metering, METERING_VALUES, cached=False)
            if electrical is not None:
                attrs = await _read(electrical, ELECTRICAL_SCALING, cached=True)
                self._electrical_scales = ElectricalScales.from_attributes(attrs)
                await _read(electrical, ELECTRICAL_VALUES, cached=False)
        except ScalingError as error:
            self.problem = str(error)
            raise
        self.problem = None

    @property
    def scaled(self) -> bool:
        """Whether the scaling of every cluster it has is known."""
        return (self._metering is None or self._metering_scales is not None) and (
            self._electrical is None or self._electrical_scales is not None
        )

    def reading(self) -> ZigbeeReading:
        return reading_of(
            self._raw[METERING],
            self._metering_scales,
            self._raw[ELECTRICAL_MEASUREMENT],
            self._electrical_scales,
        )

    @property
    def link_quality(self) -> int | None:
        """LQI of the last frame zigpy received from the device (0..255)."""
        lqi = self._device.lqi
        return None if lqi is None else int(lqi)

    @property
    def signal_strength(self) -> int | None:
        """RSSI in dBm of the last frame received from the device, if the radio gives it."""
        rssi = self._device.rssi
        return None if rssi is None else int(rssi)

    def add_listener(self, update: Callable[[], None]) -> Callable[[], None]:
        """Call `update` after each attribute update; returns the unsubscribe."""
        self._listeners.append(update)
        return lambda: self._listeners.remove(update)

    def _clusters(self) -> dict[int, Any]:
        clusters = {METERING: self._metering, ELECTRICAL_MEASUREMENT: self._electrical}
        return {cid: cluster for cid, cluster in clusters.items() if cluster is not None}

    def _on_update(self, cluster_id: int, attrid: int, value: Any) -> None:
        cluster = self._clusters()[cluster_id]
        attribute = cluster.attributes.get(attrid)
        if attribute is None:
            return
        name = attribute.name
        if name in METERING_SCALING or name in ELECTRICAL_SCALING:
            self._rescale(cluster_id, name, value)
        elif name in METERING_VALUES or name in ELECTRICAL_VALUES:
            self._store(cluster_id, name, value)
        for update in list(self._listeners):
            update()

    def _store(self, cluster_id: int, name: str, value: Any) -> None:
        raw = self._raw[cluster_id]
        if value is None or int(value) == NON_VALUES[name]:
            if name not in CUMULATIVE:
                raw[name] = None
            return
        raw[name] = int(value)

    def _rescale(self, cluster_id: int, name: str, value: Any) -> None:
        """A scaling attribute reported: new scales, unless they make no sense. Before the
        first full read (`async_read`) there is nothing to rescale: it sets them."""
        known = self._metering_scales if cluster_id == METERING else self._electrical_scales
        if known is None:
            return
        cluster = self._clusters()[cluster_id]
        names = METERING_SCALING if cluster_id == METERING else ELECTRICAL_SCALING
        attrs = {n: cluster.get(n) for n in names} | {name: value}
        try:
            if cluster_id == METERING:
                self._metering_scales = MeteringScales.from_attributes(attrs)
            else:
                self._electrical_scales = ElectricalScales.from_attributes(attrs)
        except ScalingError as error:
            if self.problem != str(error):
                LOGGER.warning("Zigbee meter %s: %s; keeping the previous scale", self.ieee, error)
            self.problem = str(error)


async def _read(cluster: Any, names: tuple[str, ...], *, cached: bool) -> Mapping[str, Any]:
    """Read attributes; those the device does not support are simply absent."""
    try:
        success, _failure = await cluster.read_attributes(list(names), allow_cache=cached)
    except (TimeoutError, ZigbeeException) as error:
        detail = str(error) or type(error).__name__
        raise ZigbeeUnavailable(f"no answer from the device: {detail}") from error
    return dict(success)
