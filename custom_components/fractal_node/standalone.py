"""Standalone planning in Home Assistant: the node plans for itself (docs/householder.md).

The householder picks entities in the options flow (section "planning"): import and export
rates, a PV forecast and the household load. Every 30 minutes, and shortly after a picked
entity changes (debounced), their states, the load's statistics from the recorder (hourly
means of the last 7 days) and the battery's state of charge become the planner's home
scenario (`fractal.planner.standalone`); the LP runs in a worker thread. The plan is the
executor's local default while in force: for a standalone node, and for a linked node whose
aggregator plan expired or was never received. Inputs that cannot be used are listed in the
standalone plan sensor's ``problems`` attribute; nothing here raises into Home Assistant.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import CALLBACK_TYPE, Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.event import async_track_state_change_event, async_track_time_interval
from homeassistant.helpers.recorder import get_instance
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.loader import IntegrationNotFound, async_get_integration
from homeassistant.util import dt as dt_util

from .const import (
    CONF_BATTERY_CAPACITY,
    CONF_EXPORT_RATE,
    CONF_IMPORT_RATE,
    CONF_LOAD,
    CONF_PV_FORECAST,
    DOMAIN,
)
from .fractal.executor import Envelope
from .fractal.planner import Planner
from .fractal.planner.standalone import (
    KW_PER,
    KWH_PER,
    InputError,
    Outcome,
    Period,
    PlanningInputs,
    Rates,
    load_profile,
    merged_rates,
    parse_pv_forecast,
    parse_rates,
    plan_standalone,
)
from .fractal.protocol import DeviceKind, Plan

if TYPE_CHECKING:  # coordinator.py holds the planner in the entry's runtime data
    from .coordinator import FractalNodeConfigEntry

_LOGGER = logging.getLogger(__package__)

PLAN_INTERVAL: Final = timedelta(minutes=30)
DEBOUNCE_S: Final = 30.0  # an Octopus rates update touches several entities at once
LOAD_HISTORY: Final = timedelta(days=7)
SOLVE_TIME_LIMIT_S: Final = 10.0


class StandaloneCoordinator(DataUpdateCoordinator[Outcome | None]):
    """Pushed after each planning run; nothing is polled."""

    def __init__(self, hass: HomeAssistant, entry: FractalNodeConfigEntry) -> None:
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} standalone planner",
            update_interval=None,
        )
        self.data = None

    async def _async_update_data(self) -> Outcome | None:
        return self.data


class StandalonePlanner:
    """Plans the node from the picked entities, on a timer and when they change."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: FractalNodeConfigEntry,
        envelope: Envelope,
        settings: Mapping[str, Any],
        soc_pct: Callable[[str], float | None],
    ) -> None:
        self._hass = hass
        self._entry = entry
        self._envelope = envelope
        self.settings = settings
        self._soc_pct = soc_pct
        self._planner = Planner(time_limit_s=SOLVE_TIME_LIMIT_S)
        self._lock = asyncio.Lock()  # one solve at a time: the warm model is not shared
        self.coordinator = StandaloneCoordinator(hass, entry)
        self._debouncer = Debouncer(
            hass, _LOGGER, cooldown=DEBOUNCE_S, immediate=False, function=self.async_plan
        )

    @property
    def plan(self) -> Plan | None:
        """The latest plan (the executor checks it is still in force)."""
        outcome = self.coordinator.data
        return outcome.plan if outcome is not None else None

    def watched(self) -> list[str]:
        """The entities whose changes start a new plan: rates and forecasts. Not the load: a
        power sensor changes every few seconds, and the plan reads its hourly history."""
        return [
            *self.settings.get(CONF_IMPORT_RATE, []),
            *self.settings.get(CONF_EXPORT_RATE, []),
            *self.settings.get(CONF_PV_FORECAST, []),
        ]

    @callback
    def start(self) -> list[CALLBACK_TYPE]:
        """Plan now, every 30 minutes and after the inputs change; returns the unsubscribers."""

        @callback
        def changed(_: Event[EventStateChangedData]) -> None:
            self._debouncer.async_schedule_call()

        @callback
        def due(_: datetime) -> None:
            self._entry.async_create_background_task(
                self._hass, self.async_plan(), "fractal_node standalone plan"
            )

        due(dt_util.utcnow())
        return [
            async_track_time_interval(self._hass, due, PLAN_INTERVAL, name="fractal_node plan"),
            async_track_state_change_event(self._hass, self.watched(), changed),
            self._debouncer.async_shutdown,
        ]

    async def async_plan(self, now: datetime | None = None) -> None:
        """Gather the inputs, plan in a worker thread and publish the outcome."""
        async with self._lock:
            now = now or dt_util.utcnow()
            inputs = await self.async_inputs()
            outcome = await self._hass.async_add_executor_job(
                plan_standalone, self._planner, self._envelope.descriptor, inputs, now
            )
        if outcome.plan is None:
            _LOGGER.debug("standalone planning made no plan: %s", "; ".join(outcome.problems))
        self.coordinator.async_set_updated_data(outcome)

    async def async_inputs(self) -> PlanningInputs:
        problems: list[str] = []
        reader = InputReader(self._hass, self.settings)
        imports = reader.rates(CONF_IMPORT_RATE, problems)
        exports = reader.rates(CONF_EXPORT_RATE, problems)
        pv = await reader.async_pv_forecast(problems)
        load = await reader.async_load(problems)
        battery = next(
            (d for d in self._envelope.descriptor.devices if d.kind is DeviceKind.BATTERY), None
        )
        return PlanningInputs(
            import_rates=imports or Rates(),
            export_rates=exports,
            pv=pv,
            load=load,
            soc_pct=self._soc_pct(battery.id) if battery is not None else None,
            capacity_kwh=self.settings.get(CONF_BATTERY_CAPACITY),
            problems=tuple(problems),
        )


async def async_input_problems(hass: HomeAssistant, settings: Mapping[str, Any]) -> list[str]:
    """What is wrong with the picked rate and forecast entities now (the options flow's check;
    the load's history is not checked: a new sensor has none yet)."""
    problems: list[str] = []
    reader = InputReader(hass, settings)
    reader.rates(CONF_IMPORT_RATE, problems)
    reader.rates(CONF_EXPORT_RATE, problems)
    await reader.async_pv_forecast(problems)
    return problems


class InputReader:
    """Reads the picked entities into the planner's inputs, listing what is unusable."""

    def __init__(self, hass: HomeAssistant, settings: Mapping[str, Any]) -> None:
        self._hass = hass
        self.settings = settings

    def rates(self, key: str, problems: list[str]) -> Rates | None:
        """The entities' rates merged; None if none of them is usable."""
        usable = []
        for entity_id in self.settings.get(key, []):
            try:
                state, attributes = self._state(entity_id)
                usable.append(parse_rates(state, attributes))
            except InputError as error:
                problems.append(f"{entity_id}: {error}")
        return merged_rates(usable) if usable else None

    def _state(self, entity_id: str) -> tuple[str, Mapping[str, object]]:
        state = self._hass.states.get(entity_id)
        if state is None:
            raise InputError("no such entity")
        if state.state == STATE_UNAVAILABLE and not state.attributes:
            raise InputError("unavailable")
        return state.state, state.attributes

    async def async_pv_forecast(self, problems: list[str]) -> tuple[Period, ...]:
        periods: list[Period] = []
        for entity_id in self.settings.get(CONF_PV_FORECAST, []):
            try:
                state, attributes = self._state(entity_id)
                try:
                    periods.extend(parse_pv_forecast(state, attributes))
                except InputError:
                    # Forecast.Solar keeps its periods behind its energy platform.
                    forecast = await self._energy_platform_forecast(entity_id)
                    if forecast is None:
                        raise
                    periods.extend(parse_pv_forecast(state, forecast))
            except InputError as error:
                problems.append(f"{entity_id}: {error}")
        return tuple(sorted(periods, key=lambda period: period.start))

    async def _energy_platform_forecast(self, entity_id: str) -> Mapping[str, object] | None:
        """The solar forecast of the entity's config entry, from its integration's energy
        platform (as the Energy dashboard gets it), if it has one."""
        registered = er.async_get(self._hass).async_get(entity_id)
        entry_id = registered.config_entry_id if registered is not None else None
        entry = self._hass.config_entries.async_get_entry(entry_id) if entry_id else None
        if entry is None:
            return None
        if entry.state is not ConfigEntryState.LOADED:
            raise InputError(f"its integration ({entry.domain}) is not running: no forecast")
        try:
            integration = await async_get_integration(self._hass, entry.domain)
            platform = await integration.async_get_platform("energy")
        except (IntegrationNotFound, ImportError):
            return None
        get_forecast = getattr(platform, "async_get_solar_forecast", None)
        if get_forecast is None:
            return None
        forecast: Mapping[str, object] | None = await get_forecast(self._hass, entry.entry_id)
        return forecast

    async def async_load(self, problems: list[str]) -> dict[int, float]:
        entity_id = self.settings.get(CONF_LOAD)
        if not entity_id:
            return {}
        try:
            samples = await self._load_samples(entity_id)
        except InputError as error:
            problems.append(f"{entity_id}: {error}")
            return {}
        return load_profile(samples)

    async def _load_samples(self, entity_id: str) -> list[tuple[datetime, float]]:
        """Hourly kW of the load over the last week, from the recorder's statistics."""
        if "recorder" not in self._hass.config.components:
            raise InputError("the recorder is not running: no load history")
        state = self._hass.states.get(entity_id)
        unit = state.attributes.get("unit_of_measurement") if state is not None else None
        if unit in KW_PER:
            kind: str = "mean"
        elif unit in KWH_PER:
            kind = "change"
        else:
            raise InputError(f"unknown unit {unit!r}: a power (W, kW) or energy (Wh, kWh) sensor")
        now = dt_util.utcnow()
        rows = await get_instance(self._hass).async_add_executor_job(
            statistics_during_period,
            self._hass,
            now - LOAD_HISTORY,
            now,
            {entity_id},
            "hour",
            {"power": "kW", "energy": "kWh"},
            {kind},
        )
        samples = [
            (dt_util.utc_from_timestamp(row["start"]), value)
            for row in rows.get(entity_id, [])
            if isinstance(value := row.get(kind), float | int)
        ]
        if not samples:
            raise InputError("no statistics in the last 7 days (is its state_class set?)")
        return samples
