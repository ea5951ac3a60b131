"""What every smart meter of the node shares in Home Assistant, whatever carries its readings
(Glow CAD over MQTT, the Glowmarkt cloud, Zigbee): its sensors, its `MeterSource` and the
repair issue of a silent meter.

A transport pushes `MeterReading`s into the meter's `MeterSource`; the glitch filter keeps the
good values; sensors and the node's power flows listen. A meter silent for `SILENCE_AFTER` has
unavailable entities and no power reading; after `SILENT_ISSUE_AFTER` a repair issue says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import (
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfEnergy,
    UnitOfPower,
    UnitOfVolume,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util

from .const import CONF_NODE_ID, CONF_ROLE, DOMAIN, Role
from .fractal.meters import CUMULATIVE, MeterFilter, MeterReading, MeterState, Quantity

# No message for this long: the meter's entities are unavailable (a Glow CAD sends every ~10 s).
SILENCE_AFTER: Final = timedelta(minutes=3)
# Silent this long: a repair issue (a CAD rebooting or a Wi-Fi blip does not raise one).
SILENT_ISSUE_AFTER: Final = timedelta(minutes=30)
SILENCE_CHECK_INTERVAL: Final = timedelta(seconds=30)
ISSUE_METER_SILENT: Final = "meter_silent"
# What the installer can make a meter: the node's grid meter, or only shown (its power then
# feeds no flow, e.g. when a Modbus meter is the grid meter already).
METER_ROLE_MONITOR: Final = "monitor"
METER_ROLES: Final = (Role.GRID_METER.value, METER_ROLE_MONITOR)
# Prices as Home Assistant's Energy dashboard takes them (currency per kWh); meters give pence.
PRICE_UNIT: Final = "GBP/kWh"
STANDING_CHARGE_UNIT: Final = "GBP/d"


def _pounds(pence: float | None) -> float | None:
    return None if pence is None else round(pence / 100, 6)


def _import_w(state: MeterState) -> float | None:
    power = state.number(Quantity.POWER)
    return None if power is None else max(power, 0.0)


def _export_w(state: MeterState) -> float | None:
    power = state.number(Quantity.POWER)
    return None if power is None else max(-power, 0.0)


@dataclass(frozen=True, kw_only=True)
class MeterSensorDescription(SensorEntityDescription):
    quantity: Quantity  # the entity exists when the meter's kind reports this quantity
    value_fn: Callable[[MeterState], float | str | None]


def _number(
    quantity: Quantity, convert: Callable[[float | None], float | None] = lambda v: v
) -> Callable[[MeterState], float | None]:
    return lambda state: convert(state.number(quantity))


def _energy(key: str, quantity: Quantity) -> MeterSensorDescription:
    return MeterSensorDescription(
        key=key,
        translation_key=key,
        quantity=quantity,
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=_number(quantity),
    )


def _price(key: str, quantity: Quantity, unit: str) -> MeterSensorDescription:
    return MeterSensorDescription(
        key=key,
        translation_key=key,
        quantity=quantity,
        native_unit_of_measurement=unit,
        suggested_display_precision=4,
        value_fn=_number(quantity, _pounds),
    )


METER_SENSORS: Final[tuple[MeterSensorDescription, ...]] = (
    MeterSensorDescription(
        key="import_power",
        translation_key="import_power",
        quantity=Quantity.POWER,
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=_import_w,
    ),
    MeterSensorDescription(
        key="export_power",
        translation_key="export_power",
        quantity=Quantity.POWER,
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=_export_w,
    ),
    _energy("import_energy", Quantity.IMPORT_ENERGY),
    _energy("export_energy", Quantity.EXPORT_ENERGY),
    _energy("gas_energy", Quantity.GAS_ENERGY),
    MeterSensorDescription(
        key="gas_volume",
        translation_key="gas_volume",
        quantity=Quantity.GAS_VOLUME,
        device_class=SensorDeviceClass.GAS,
        native_unit_of_measurement=UnitOfVolume.CUBIC_METERS,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=_number(Quantity.GAS_VOLUME),
    ),
    _price("unit_rate", Quantity.UNIT_RATE, PRICE_UNIT),
    _price("standing_charge", Quantity.STANDING_CHARGE, STANDING_CHARGE_UNIT),
    _price("gas_unit_rate", Quantity.GAS_UNIT_RATE, PRICE_UNIT),
    _price("gas_standing_charge", Quantity.GAS_STANDING_CHARGE, STANDING_CHARGE_UNIT),
    MeterSensorDescription(
        key="signal_strength",
        translation_key="signal_strength",
        quantity=Quantity.SIGNAL_STRENGTH,
        device_class=SensorDeviceClass.SIGNAL_STRENGTH,
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_number(Quantity.SIGNAL_STRENGTH),
    ),
    MeterSensorDescription(
        key="link_quality",
        translation_key="link_quality",
        quantity=Quantity.LINK_QUALITY,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_number(Quantity.LINK_QUALITY),
    ),
    MeterSensorDescription(
        key="link_status",
        translation_key="link_status_meter",
        quantity=Quantity.LINK_STATUS,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state: state.get(Quantity.LINK_STATUS),
    ),
)


class MeterSource:
    """One smart meter of the node: a `power_sources.PowerSource` its transport pushes to.

    `problem` is the transport's reason for silence (e.g. the broker refused the credentials),
    shown in the repair issue."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        subentry: ConfigSubentry,
        *,
        quantities: frozenset[Quantity],
        manufacturer: str,
        model: str,
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.subentry = subentry
        self.quantities = quantities
        self.filter = MeterFilter(subentry.title, SILENCE_AFTER, started=dt_util.utcnow())
        self.problem: str | None = None
        self.device_info = DeviceInfo(
            identifiers={(DOMAIN, subentry.subentry_id)},
            name=subentry.title,
            manufacturer=manufacturer,
            model=model,
            via_device=(DOMAIN, entry.data[CONF_NODE_ID]),
        )
        self._listeners: list[CALLBACK_TYPE] = []
        self._was_silent = True

    @property
    def role(self) -> str:
        return str(self.subentry.data[CONF_ROLE])

    @property
    def node_id(self) -> str:
        return str(self.entry.data[CONF_NODE_ID])

    def state(self) -> MeterState:
        return self.filter.state(dt_util.utcnow())

    def power(self) -> float | None:
        """Net power in W (> 0 import), None while silent or not known yet."""
        return self.state().number(Quantity.POWER)

    @callback
    def async_add_listener(self, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        self._listeners.append(update)

        @callback
        def remove() -> None:
            self._listeners.remove(update)

        return remove

    @callback
    def async_push(self, reading: MeterReading) -> None:
        """A reading from the transport: the filter takes its good values, listeners hear."""
        before = self.filter.state(dt_util.utcnow())
        self.filter.accept(reading, dt_util.utcnow())
        after = self.state()
        if after.values != before.values or self._was_silent != after.silent:
            self._notify(after.silent)
        self._update_silent_issue(dt_util.utcnow())

    @callback
    def async_set_problem(self, problem: str | None) -> None:
        self.problem = problem

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Watch for silence until the returned callback is called (on unload)."""
        unsubscribe = async_track_time_interval(
            self.hass, self._async_check_silence, SILENCE_CHECK_INTERVAL
        )

        @callback
        def stop() -> None:
            unsubscribe()
            # A meter removed or reloaded starts afresh; a still silent one raises it again.
            ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)

        return stop

    @property
    def issue_id(self) -> str:
        return f"{ISSUE_METER_SILENT}_{self.entry.entry_id}_{self.subentry.subentry_id}"

    @callback
    def _async_check_silence(self, now: datetime) -> None:
        silent = self.filter.silent(now)
        if silent != self._was_silent:
            self._notify(silent)
        self._update_silent_issue(now)

    def _notify(self, silent: bool) -> None:
        self._was_silent = silent
        for update in list(self._listeners):
            update()

    def _update_silent_issue(self, now: datetime) -> None:
        silent_for = self.filter.silent_for(now)
        if silent_for < SILENT_ISSUE_AFTER:
            ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self.issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_METER_SILENT,
            translation_placeholders={
                "name": self.subentry.title,
                "node": self.entry.title,
                "minutes": str(int(silent_for.total_seconds() // 60)),
                "reason": self.problem or "no message",
            },
        )


def meter_sensors(source: MeterSource) -> list[MeterSensor]:
    """The sensors of the quantities the meter's kind reports."""
    return [
        MeterSensor(source, description)
        for description in METER_SENSORS
        if description.quantity in source.quantities
    ]


class MeterSensor(RestoreSensor):
    """One quantity of a meter. Counters restore their last value into the glitch filter, so a
    first reading of 0 after a restart is dropped, not seen as a meter reset."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    entity_description: MeterSensorDescription

    def __init__(self, source: MeterSource, description: MeterSensorDescription) -> None:
        self.source = source
        self.entity_description = description
        subentry_id = source.subentry.subentry_id
        self._attr_unique_id = f"{source.node_id}_{subentry_id}_{description.key}"
        self._attr_device_info = source.device_info

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        quantity = self.entity_description.quantity
        if quantity in CUMULATIVE and (last := await self.async_get_last_sensor_data()):
            value = last.native_value
            if isinstance(value, int | float) and last.native_unit_of_measurement == (
                self.entity_description.native_unit_of_measurement
            ):
                self.source.filter.restore(quantity, float(value))
        self.async_on_remove(self.source.async_add_listener(self.async_write_ha_state))

    @property
    def available(self) -> bool:
        return self.native_value is not None

    @property
    def native_value(self) -> float | str | None:
        return self.entity_description.value_fn(self.source.state())
