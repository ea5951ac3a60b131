"""The home's own dashboard in Home Assistant: a sidebar panel per node, fed by an HTTP view.

    GET /api/fractal_node/{entry_id}/dashboard?period=day|week     (authenticated)

The numbers come from Home Assistant's recorder: the history of the node's grid, PV and
battery power sensors. Not from the link's telemetry buffer: that is a send queue, emptied as
the aggregator acknowledges samples (and a standalone node has none), while the recorder keeps
what the householder chose to keep (`purge_keep_days`), survives restarts and is what the
householder's other dashboards show. Each sensor's history is a step function (a state holds
until the next); it is sampled every 10 s, as the node samples telemetry, and split per sample
by the library's `fractal.energy_split`, the very method the aggregator's dashboards use
(docs/views.md). The panel (frontend/fractal-dashboard.js) draws the charts with plotly.js,
served from the plotly wheel (a requirement of the integration): no CDN."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import numpy as np
import plotly  # type: ignore[import-untyped]
from aiohttp import web
from homeassistant.components import frontend, panel_custom
from homeassistant.components.http import StaticPathConfig
from homeassistant.components.recorder import history
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import dt as dt_util

from .const import CONF_NODE_ID, DOMAIN
from .fractal.energy_split import Watts, split

STATIC_URL: Final = "/fractal_node_static"
PANEL_JS: Final = Path(__file__).parent / "frontend" / "fractal-dashboard.js"
WEBCOMPONENT: Final = "fractal-node-dashboard"
SAMPLE_SECONDS: Final = 10
BUCKET_SAMPLES: Final = 30
"""Samples per 5-minute bucket of the charts."""
PERIODS: Final = {"day": timedelta(days=1), "week": timedelta(days=7)}
POWER_SENSORS: Final = {"grid": "grid_power", "pv": "pv_power", "battery": "battery_power"}
"""Flow -> sensor description key (unique id `{node_id}_{key}`)."""


def _plotly_js() -> Path:
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


async def async_setup_panel_support(hass: HomeAssistant) -> None:
    """Once per run: the panel's script, plotly.js and the dashboard view (needs HTTP)."""
    if "http" not in hass.config.components:
        return
    await hass.http.async_register_static_paths(
        [
            StaticPathConfig(f"{STATIC_URL}/fractal-dashboard.js", str(PANEL_JS), True),
            StaticPathConfig(f"{STATIC_URL}/plotly.min.js", str(_plotly_js()), True),
        ]
    )
    hass.http.register_view(DashboardView())


def panel_url_path(entry: ConfigEntry) -> str:
    return f"fractal-node-{entry.entry_id.lower()}"


async def async_register_entry_panel(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """A sidebar panel for the entry's node, removed when the entry unloads."""
    if not {"http", "frontend"} <= hass.config.components:
        return
    url_path = panel_url_path(entry)
    await panel_custom.async_register_panel(
        hass,
        frontend_url_path=url_path,
        webcomponent_name=WEBCOMPONENT,
        sidebar_title=entry.title,
        sidebar_icon="mdi:home-lightning-bolt",
        module_url=f"{STATIC_URL}/fractal-dashboard.js",
        config={"entry_id": entry.entry_id},
        require_admin=False,
    )
    entry.async_on_unload(
        lambda: frontend.async_remove_panel(hass, url_path, warn_if_unknown=False)
    )


class DashboardView(HomeAssistantView):
    """The node's dashboard numbers and 5-minute series as JSON."""

    url = "/api/fractal_node/{entry_id}/dashboard"
    name = "api:fractal_node:dashboard"

    async def get(self, request: web.Request, entry_id: str) -> web.Response:
        hass = request.app[KEY_HASS]
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN:
            return self.json_message(f"no Fractal Node entry {entry_id}", HTTPStatus.NOT_FOUND)
        name = request.query.get("period", "day")
        if name not in PERIODS:
            return self.json_message(
                f"period must be one of {', '.join(PERIODS)}, not {name!r}",
                HTTPStatus.BAD_REQUEST,
            )
        if "recorder" not in hass.config.components:
            return self.json_message(
                "the dashboard reads the recorder, which is not running",
                HTTPStatus.SERVICE_UNAVAILABLE,
            )
        end = _floor_to_bucket(dt_util.utcnow())
        start = end - PERIODS[name]
        entity_ids = _power_entities(hass, entry)
        found = await get_instance(hass).async_add_executor_job(
            partial(
                history.get_significant_states,
                hass,
                start,
                end,
                list(entity_ids.values()),
                significant_changes_only=False,
                no_attributes=True,
            )
        )
        powers = {
            flow: sampled(found.get(entity_id, []), start, end)
            for flow, entity_id in entity_ids.items()
        }
        return self.json(
            {"node": entry.data[CONF_NODE_ID], "period": name, "entities": entity_ids}
            | dashboard(powers, start, end)
        )


def _power_entities(hass: HomeAssistant, entry: ConfigEntry) -> dict[str, str]:
    registry = er.async_get(hass)
    node_id = entry.data[CONF_NODE_ID]
    found = {}
    for flow, key in POWER_SENSORS.items():
        entity_id = registry.async_get_entity_id("sensor", DOMAIN, f"{node_id}_{key}")
        if entity_id is not None:
            found[flow] = entity_id
    return found


def _floor_to_bucket(when: datetime) -> datetime:
    """Buckets on the clock's 5 minutes (00:05, 00:10, ...), as the aggregator's."""
    return when.replace(minute=when.minute - when.minute % 5, second=0, microsecond=0)


def sampled(states: Sequence[State | Mapping[str, Any]], start: datetime, end: datetime) -> Watts:
    """A sensor's history as its value every 10 s in [start, end) (NaN while unknown)."""
    changes: list[tuple[float, float]] = []
    for state in states:
        assert isinstance(state, State)
        changes.append((state.last_changed.timestamp(), _watts(state.state)))
    times = start.timestamp() + SAMPLE_SECONDS * np.arange(_samples(start, end))
    if not changes:
        return np.full(len(times), np.nan)
    changed = np.array([when for when, _ in changes])
    values = np.array([value for _, value in changes])
    index = np.searchsorted(changed, times, side="right") - 1
    return np.where(index >= 0, values[index.clip(min=0)], np.nan)


def _samples(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds()) // SAMPLE_SECONDS


def _watts(text: str) -> float:
    try:
        value = float(text)
    except ValueError:  # unknown, unavailable
        return math.nan
    return value if math.isfinite(value) else math.nan


def dashboard(powers: Mapping[str, Watts], start: datetime, end: datetime) -> dict[str, Any]:
    """The panel's numbers: energy per flow (Wh), how demand was met and PV used (Wh), the
    latest 5-minute means (W) and the 5-minute series of the charts."""
    count = _samples(start, end)
    missing = np.full(count, np.nan)
    grid, pv, battery = (powers.get(flow, missing) for flow in ("grid", "pv", "battery"))
    flows = {"grid_w": grid, "battery_w": np.nan_to_num(battery)} | split(grid, pv, battery)
    flows["battery_w"] = np.where(np.isnan(grid), np.nan, flows["battery_w"])
    energy = {
        name.removesuffix("_w") + "_wh": float(np.nansum(values)) * SAMPLE_SECONDS / 3600
        for name, values in flows.items()
    }
    buckets = {name: _bucket_means(values) for name, values in flows.items()}
    first = start.timestamp()
    times = [
        dt_util.utc_from_timestamp(first + 300 * index).isoformat()
        for index in range(len(buckets["grid_w"]))
    ]
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "energy_wh": energy,
        "demand_met_wh": {
            "pv": energy["gen_to_demand_wh"],
            "battery": energy["battery_to_demand_wh"],
            "grid": energy["grid_to_demand_wh"],
        },
        "pv_use_wh": {
            "self_consumed": energy["gen_to_demand_wh"],
            "battery": energy["gen_to_battery_wh"],
            "exported": energy["gen_export_wh"],
        },
        "now": _latest(buckets, times),
        "series": {"ts": times} | {name: _listed(values) for name, values in buckets.items()},
    }


def _bucket_means(values: Watts) -> Watts:
    whole = len(values) // BUCKET_SAMPLES * BUCKET_SAMPLES
    shaped = values[:whole].reshape(-1, BUCKET_SAMPLES)
    known = ~np.isnan(shaped)
    sums = np.where(known, shaped, 0.0).sum(axis=1)
    counts = known.sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _latest(buckets: Mapping[str, Watts], times: list[str]) -> dict[str, Any]:
    known = np.flatnonzero(~np.isnan(buckets["grid_w"]))
    if known.size == 0:
        return {}
    last = int(known[-1])
    return {"ts": times[last]} | {name: float(values[last]) for name, values in buckets.items()}


def _listed(values: Watts) -> list[float | None]:
    return [None if math.isnan(value) else round(float(value), 1) for value in values]
