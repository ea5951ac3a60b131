"""A Glowmarkt (Bright) cloud meter of the node: the DCC's half-hourly data in Home Assistant.

Every 30 minutes the coordinator fetches the half-hours the DCC has delivered since the last
hour it imported and adds them, summed per hour, to Home Assistant's long-term statistics as
external statistics (`fractal_node:glowmarkt_<resource>`): the Energy dashboard gets every
hour, also those of an outage (the next fetch starts from the last imported hour, whatever
happened in between) and none twice (each hour is imported once, after the last one, with the
running sum; importing an hour again replaces it). The meter's sensors show the running totals
and the tariff.

The data is at best half an hour and often a day late, so a cloud meter never takes the grid
meter role: the executor needs the power now (a Glow CAD or a Modbus meter gives it).

A refused password is the user's to fix: a repair issue points to the meter's Reconfigure
(reauthentication would ask for the node's certificate: it belongs to the parent entry), and
fetching stops until then, so a wrong password is not retried against the account every half
hour. Other failures (API down, rate limited, malformed answers) make the update fail and are
retried at the next interval; after `SILENCE` the meter is silent (entities unavailable, a
repair issue).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    get_last_statistics,
)
from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME, UnitOfEnergy
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.recorder import get_instance
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER
from .fractal import glowmarkt
from .fractal.glowmarkt import (
    Classifier,
    GlowmarktAuthError,
    GlowmarktClient,
    GlowmarktError,
    GlowmarktServerError,
    Tariff,
    complete_hours,
    floor_hour,
)
from .fractal.meters import MeterFilter, MeterReading, Quantity
from .meter_entities import MeterSource

SUBENTRY_GLOWMARKT: Final = "glowmarkt"
CONF_RESOURCES: Final = "resources"  # [{id, classifier, name}] chosen in the flow
UPDATE_INTERVAL: Final = timedelta(minutes=30)
# A first set-up imports this much history (3 requests per resource).
INITIAL_HISTORY: Final = timedelta(days=30)
# A half-hour the DCC has not delivered a day later, while later ones are in, is a gap.
SETTLE: Final = timedelta(hours=24)
# Three fetches in a row without an answer: the meter is silent.
SILENCE: Final = timedelta(minutes=95)
ISSUE_GLOWMARKT_AUTH: Final = "glowmarkt_auth_failed"
RECORDER: Final = "recorder"

# What each resource kind feeds: its meter quantity, its tariff quantities, its name.
ENERGY_QUANTITY: Final = {
    Classifier.ELECTRICITY_IMPORT: Quantity.IMPORT_ENERGY,
    Classifier.ELECTRICITY_EXPORT: Quantity.EXPORT_ENERGY,
    Classifier.GAS: Quantity.GAS_ENERGY,
}
TARIFF_QUANTITIES: Final = {
    Classifier.ELECTRICITY_IMPORT: (Quantity.UNIT_RATE, Quantity.STANDING_CHARGE),
    Classifier.GAS: (Quantity.GAS_UNIT_RATE, Quantity.GAS_STANDING_CHARGE),
}
STATISTIC_LABEL: Final = {
    Classifier.ELECTRICITY_IMPORT: "electricity import",
    Classifier.ELECTRICITY_EXPORT: "electricity export",
    Classifier.GAS: "gas",
}
# Tests point the client at a local server; Home Assistant always uses the real API.
BASE_URL = glowmarkt.BASE_URL


@dataclass(frozen=True)
class ChosenResource:
    resource_id: str
    classifier: Classifier

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ChosenResource:
        return cls(str(data["id"]), Classifier(data["classifier"]))


@dataclass(frozen=True)
class Imported:
    """Where a resource's statistics stand: the running sum (kWh) up to `until`."""

    total_kwh: float
    until: datetime


def new_client(hass: HomeAssistant, username: str, password: str) -> GlowmarktClient:
    """A client on Home Assistant's shared aiohttp session."""
    return GlowmarktClient(async_get_clientsession(hass), username, password, base_url=BASE_URL)


def statistic_id(resource_id: str) -> str:
    """External statistic ids are `domain:slug`; resource ids are UUIDs."""
    return f"{DOMAIN}:glowmarkt_{re.sub(r'[^a-z0-9]+', '_', resource_id.lower()).strip('_')}"


def auth_issue_id(entry: ConfigEntry, subentry: ConfigSubentry) -> str:
    return f"{ISSUE_GLOWMARKT_AUTH}_{entry.entry_id}_{subentry.subentry_id}"


async def async_start_glowmarkt(
    hass: HomeAssistant, entry: ConfigEntry, subentry: ConfigSubentry
) -> MeterSource:
    """The meter's source, fed by a coordinator that fetches every 30 minutes. The first
    fetch runs in the background: a cloud that is down must not hold up the node."""
    resources = [ChosenResource.from_data(item) for item in subentry.data[CONF_RESOURCES]]
    source = MeterSource(
        hass,
        entry,
        subentry,
        quantities=_quantities(resources),
        manufacturer="Hildebrand",
        model="Glowmarkt (DCC) cloud",
    )
    source.filter = MeterFilter(subentry.title, SILENCE)  # half-hourly, not every 10 s
    client = new_client(hass, subentry.data[CONF_USERNAME], subentry.data[CONF_PASSWORD])
    coordinator = GlowmarktCoordinator(hass, entry, subentry, client, resources)

    @callback
    def push() -> None:
        source.async_set_problem(coordinator.problem)
        if coordinator.last_update_success:
            for reading in coordinator.data:
                source.async_push(reading)

    entry.async_on_unload(coordinator.async_add_listener(push))
    # A meter removed or reloaded (e.g. after Reconfigure) starts afresh: a password still
    # refused raises the issue again at its first fetch.
    issue_id = auth_issue_id(entry, subentry)
    entry.async_on_unload(lambda: ir.async_delete_issue(hass, DOMAIN, issue_id))
    entry.async_create_background_task(
        hass, coordinator.async_refresh(), f"{DOMAIN} glowmarkt first fetch"
    )
    return source


class GlowmarktCoordinator(DataUpdateCoordinator[list[MeterReading]]):
    """Imports a meter's new half-hours into the statistics; its data is what the meter then
    reads: one reading per resource (its running total, stamped at the end of the last hour
    imported, so the glitch filter takes it only when it has moved on) and one of tariffs."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        subentry: ConfigSubentry,
        client: GlowmarktClient,
        resources: list[ChosenResource],
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{subentry.title} (Glowmarkt)",
            update_interval=UPDATE_INTERVAL,
        )
        self.subentry = subentry
        self.client = client
        self.resources = resources
        self.problem: str | None = None
        self._lock = asyncio.Lock()  # one import at a time: sums must follow each other

    async def _async_update_data(self) -> list[MeterReading]:
        entry = self.config_entry
        assert entry is not None  # made for an entry
        try:
            async with self._lock:
                reading = await self._async_import_all()
        except GlowmarktAuthError as err:
            self._async_raise_auth_issue(entry)
            self.update_interval = None  # no retries with a refused password
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="glowmarkt_password_refused",
                translation_placeholders=self._problem(err),
            ) from err
        except GlowmarktError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="glowmarkt_api_failed",
                translation_placeholders=self._problem(err),
            ) from err
        ir.async_delete_issue(self.hass, DOMAIN, auth_issue_id(entry, self.subentry))
        self.problem = None
        return reading

    async def _async_import_all(self) -> list[MeterReading]:
        if RECORDER not in self.hass.config.components:
            raise GlowmarktError("Home Assistant's recorder is not running: nowhere to import")
        now = dt_util.utcnow()
        readings: list[MeterReading] = []
        tariffs: dict[Quantity, float] = {}
        for resource in self.resources:
            imported = await self._async_import(resource, now)
            if imported is not None:
                quantity = ENERGY_QUANTITY[resource.classifier]
                readings.append(_reading(imported.until, {quantity: imported.total_kwh * 1000}))
            tariffs |= await self._async_tariff(resource)
        # Also without tariffs: an answer, even with nothing new yet, means the meter is heard.
        readings.append(_reading(now, tariffs))
        return readings

    async def _async_import(self, resource: ChosenResource, now: datetime) -> Imported | None:
        """Import the complete hours after the last imported one; where it then stands."""
        last = await self._async_last_imported(resource)
        start = last.until if last is not None else floor_hour(now) - INITIAL_HISTORY
        total = last.total_kwh if last is not None else 0.0
        readings = await self.client.readings(resource.resource_id, start, floor_hour(now))
        hours = complete_hours(readings, start, settled_before=now - SETTLE)
        if not hours:
            return last
        rows: list[StatisticData] = []
        for hour in hours:
            total += hour.kwh
            rows.append(StatisticData(start=hour.start, state=hour.kwh, sum=total))
        async_add_external_statistics(self.hass, self._metadata(resource), rows)
        return Imported(total, hours[-1].start + timedelta(hours=1))

    async def _async_last_imported(self, resource: ChosenResource) -> Imported | None:
        stat_id = statistic_id(resource.resource_id)
        last = await get_instance(self.hass).async_add_executor_job(
            get_last_statistics, self.hass, 1, stat_id, False, {"sum"}
        )
        rows = last.get(stat_id)
        if not rows:
            return None
        ended = dt_util.utc_from_timestamp(rows[0]["start"]) + timedelta(hours=1)
        return Imported(float(rows[0].get("sum") or 0.0), ended)

    async def _async_tariff(self, resource: ChosenResource) -> dict[Quantity, float]:
        quantities = TARIFF_QUANTITIES.get(resource.classifier)
        if quantities is None:
            return {}
        try:
            tariff = await self.client.tariff(resource.resource_id)
        except GlowmarktServerError as err:
            if err.status != 404:  # 404: the supplier publishes no tariff for this meter
                raise
            tariff = None
        return _tariff_values(tariff, quantities)

    def _metadata(self, resource: ChosenResource) -> StatisticMetaData:
        return StatisticMetaData(
            mean_type=StatisticMeanType.NONE,
            has_sum=True,
            name=f"{self.subentry.title} {STATISTIC_LABEL[resource.classifier]}",
            source=DOMAIN,
            statistic_id=statistic_id(resource.resource_id),
            unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        )

    def _problem(self, err: GlowmarktError) -> dict[str, str]:
        """Keep the reason for the silent-meter issue; the placeholders of the failure."""
        self.problem = str(err)
        return {"name": self.subentry.title, "reason": str(err)}

    @callback
    def _async_raise_auth_issue(self, entry: ConfigEntry) -> None:
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            auth_issue_id(entry, self.subentry),
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_GLOWMARKT_AUTH,
            translation_placeholders={"name": self.subentry.title, "node": entry.title},
        )


def _quantities(resources: list[ChosenResource]) -> frozenset[Quantity]:
    chosen = {resource.classifier for resource in resources}
    quantities = {ENERGY_QUANTITY[classifier] for classifier in chosen}
    for classifier in chosen:
        quantities.update(TARIFF_QUANTITIES.get(classifier, ()))
    return frozenset(quantities)


def _tariff_values(
    tariff: Tariff | None, quantities: tuple[Quantity, Quantity]
) -> dict[Quantity, float]:
    if tariff is None:
        return {}
    rate, standing = quantities
    return {rate: tariff.rate_pence_per_kwh, standing: tariff.standing_charge_pence_per_day}


_READING_FIELDS: Final = {
    Quantity.IMPORT_ENERGY: "import_energy_wh",
    Quantity.EXPORT_ENERGY: "export_energy_wh",
    Quantity.GAS_ENERGY: "gas_energy_wh",
    Quantity.UNIT_RATE: "unit_rate_p_per_kwh",
    Quantity.STANDING_CHARGE: "standing_charge_p_per_day",
    Quantity.GAS_UNIT_RATE: "gas_unit_rate_p_per_kwh",
    Quantity.GAS_STANDING_CHARGE: "gas_standing_charge_p_per_day",
}


def _reading(stamped: datetime, values: dict[Quantity, float]) -> MeterReading:
    fields: dict[str, Any] = {_READING_FIELDS[key]: value for key, value in values.items()}
    return MeterReading(timestamp=stamped, **fields)
