"""The householder's own data, downloaded from Home Assistant as CSV (docs/reports.md):

    GET /api/fractal_node/{entry_id}/export        (authenticated)

One long table, `time,source,name,value`:

* `recorder` rows: every state the recorder kept of every entity of the node (its sensors,
  numbers, selects...), `name` the entity id, `value` the state as recorded;
* `buffer` rows: every telemetry sample still waiting in the node's link buffer for the
  aggregator (a linked node; the aggregator's `/nodes/{node}/export` has those it received),
  one row per value, `name` the sample's field (`grid_w`, `energy.import_wh`,
  `devices.hydro.flow_m3_s`, `seq`).

Times are UTC ISO 8601. Streamed: the recorder is read an entity at a time."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web
from homeassistant.components.recorder import history
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import dt as dt_util

from .const import CONF_NODE_ID, DOMAIN
from .fractal.link.buffer import pending_samples
from .fractal.link.reporting import flatten
from .node_link import buffer_path

COLUMNS: Final = ("time", "source", "name", "value")
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def async_setup_export(hass: HomeAssistant) -> None:
    """Once per run (needs HTTP)."""
    if "http" in hass.config.components:
        hass.http.register_view(ExportView())


def _csv_text(rows: Iterable[Iterable[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def state_rows(states: Iterable[State]) -> list[tuple[str, str, str, str]]:
    return [
        (state.last_updated.astimezone(UTC).isoformat(), "recorder", state.entity_id, state.state)
        for state in states
    ]


def sample_rows(samples: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str, Any]]:
    rows: list[tuple[str, str, str, Any]] = []
    for sample in samples:
        values = flatten(sample)
        when = str(values.pop("ts", ""))
        rows.extend((when, "buffer", name, value) for name, value in sorted(values.items()))
    return rows


class ExportView(HomeAssistantView):
    """All the node's data as one CSV."""

    url = "/api/fractal_node/{entry_id}/export"
    name = "api:fractal_node:export"

    async def get(self, request: web.Request, entry_id: str) -> web.StreamResponse:
        hass = request.app[KEY_HASS]
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN:
            return self.json_message(f"no Fractal Node entry {entry_id}", HTTPStatus.NOT_FOUND)
        if "recorder" not in hass.config.components:
            return self.json_message(
                "the export reads the recorder, which is not running",
                HTTPStatus.SERVICE_UNAVAILABLE,
            )
        node = entry.data[CONF_NODE_ID]
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv",
                "Content-Disposition": f'attachment; filename="{node}.csv"',
            }
        )
        await response.prepare(request)
        await response.write(_csv_text([COLUMNS]))
        for entity_id in _entity_ids(hass, entry):
            states = await _history(hass, entity_id)
            await response.write(_csv_text(state_rows(states)))
        path = buffer_path(hass, node)
        if path.exists():
            samples = await hass.async_add_executor_job(pending_samples, path)
            await response.write(_csv_text(sample_rows(samples)))
        await response.write_eof()
        return response


def _entity_ids(hass: HomeAssistant, entry: ConfigEntry) -> list[str]:
    entries = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    return sorted(registered.entity_id for registered in entries)


async def _history(hass: HomeAssistant, entity_id: str) -> list[State]:
    found = await get_instance(hass).async_add_executor_job(
        partial(
            history.get_significant_states,
            hass,
            EPOCH,
            dt_util.utcnow(),
            [entity_id],
            significant_changes_only=False,  # every state kept, not only "significant" ones
            include_start_time_state=False,
            no_attributes=True,
        )
    )
    # without minimal_response every entry is a State
    return [state for state in found.get(entity_id, []) if isinstance(state, State)]
