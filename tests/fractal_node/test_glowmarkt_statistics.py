"""A Glowmarkt meter in Home Assistant: half-hours from a local Glowmarkt API imported into the
recorder's long-term statistics, through outages and restarts, once each."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder.core import Recorder
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_PASSWORD, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.recorder import get_instance
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.fractal_node.const import DOMAIN
from custom_components.fractal_node.glowmarkt import (
    ISSUE_GLOWMARKT_AUTH,
    SUBENTRY_GLOWMARKT,
    statistic_id,
)
from tests.fractal_node.glowmarkt_helpers import api, glowmarkt_subentry
from tests.fractal_node.helpers import NODE_ID, node_entry, setup_entry
from tests.support.glowmarkt_server import (
    EXPORT_ID,
    GAS_ID,
    IMPORT_ID,
    GlowmarktServer,
    half_hours,
    slot,
)

__all__ = ["api"]  # the fixture
NOW = slot("2026-11-20T12:10:00")
FIRST = slot("2026-11-17T00:00:00")
# The DCC never delivered 03:30 on the 18th (and has since moved on): that hour is a gap.
NEVER_DELIVERED = slot("2026-11-18T03:30:00")
# The DCC has delivered up to 09:00 today; 09:30 is still to come.
LATE = slot("2026-11-20T09:30:00")
IMPORT_STAT = statistic_id(IMPORT_ID)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder must start before Home Assistant: this replaces the package's autouse
    fixture (which asks for `hass` first) with one that asks for the recorder first."""


def consumption(when: datetime) -> float:
    """A made-up but varied half-hour: 0.1 to 0.45 kWh."""
    return round(0.1 + (when.hour % 8) * 0.05, 3)


def deliver(api: GlowmarktServer, resource_id: str, start: datetime, end: datetime) -> None:
    """The DCC's half-hours from `start` up to (not including) `end`, as the API serves them."""
    count = int((end - start) / timedelta(minutes=30))
    slots = [when for when in half_hours(start, count) if when != NEVER_DELIVERED]
    api.set_readings(resource_id, {when: consumption(when) for when in slots})


def expected_hours(start: datetime, end: datetime) -> list[datetime]:
    """Hours from `start` to `end` (exclusive) whose two half-hours were delivered."""
    hours = [start + timedelta(hours=h) for h in range(int((end - start) / timedelta(hours=1)))]
    gap = NEVER_DELIVERED.replace(minute=0)
    return [hour for hour in hours if hour != gap]


async def hourly(hass: HomeAssistant, stat_id: str) -> list[Any]:
    await async_wait_recording_done(hass)
    rows = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        FIRST - timedelta(days=40),
        None,
        {stat_id},
        "hour",
        None,
        {"state", "sum"},
    )
    return list(rows.get(stat_id, []))


def starts(rows: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromtimestamp(row["start"]).astimezone(NOW.tzinfo) for row in rows]


def assert_counted_once(rows: list[dict[str, Any]]) -> None:
    """Each hour once, in order, and each sum the previous one plus the hour."""
    assert starts(rows) == sorted(set(starts(rows)))
    previous = 0.0
    for row in rows:
        assert row["sum"] - previous == _approx(row["state"])
        previous = row["sum"]


def _approx(value: float) -> Any:
    return pytest.approx(value, abs=1e-9)


async def start_node(hass: HomeAssistant, resources: list[str]) -> MockConfigEntry:
    node = node_entry(devices=[glowmarkt_subentry(resources=resources)])
    await setup_entry(hass, node)
    await hass.async_block_till_done(wait_background_tasks=True)  # the first fetch
    await async_wait_recording_done(hass)  # as the 30 minutes to the next fetch would
    return node


def meter_entity(hass: HomeAssistant, node: MockConfigEntry, key: str) -> str:
    subentry_id = next(iter(node.subentries))
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{NODE_ID}_{subentry_id}_{key}"
    )
    assert entity_id is not None
    return entity_id


async def fetch_again(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, after: timedelta
) -> None:
    freezer.tick(after)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)


async def test_first_start_imports_every_complete_hour_and_leaves_gaps(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    api: GlowmarktServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    freezer.move_to(NOW)
    deliver(api, IMPORT_ID, FIRST, LATE)

    node = await start_node(hass, [IMPORT_ID])

    rows = await hourly(hass, IMPORT_STAT)
    # 09:00 today has only its first half yet: not counted (nor anything after it) until 09:30.
    assert starts(rows) == expected_hours(FIRST, slot("2026-11-20T09:00:00"))
    first = rows[0]
    assert first["state"] == _approx(consumption(FIRST) * 2)
    assert_counted_once(rows)
    # The first fetch asked for the 30 days before now, in 10-day requests.
    assert api.calls("readings")[0].query["from"] == "2026-10-21T12:00:00"
    # The running total and the tariff, as sensors.
    total = hass.states.get(meter_entity(hass, node, "import_energy"))
    assert total is not None
    assert float(total.state) == _approx(round(rows[-1]["sum"], 3))
    assert total.attributes["unit_of_measurement"] == "kWh"
    rate = hass.states.get(meter_entity(hass, node, "unit_rate"))
    assert rate is not None
    assert float(rate.state) == _approx(0.245)
    await hass.config_entries.async_unload(node.entry_id)


async def test_a_half_hour_delivered_late_is_counted_at_the_next_fetch(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    api: GlowmarktServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    freezer.move_to(NOW)
    deliver(api, IMPORT_ID, FIRST, LATE)
    api.set_readings(IMPORT_ID, {LATE: None})  # the API knows the slot, the DCC has not sent it
    node = await start_node(hass, [IMPORT_ID])

    deliver(api, IMPORT_ID, LATE, slot("2026-11-20T11:00:00"))
    await fetch_again(hass, freezer, timedelta(minutes=31))

    rows = await hourly(hass, IMPORT_STAT)
    assert starts(rows)[-2:] == [slot("2026-11-20T09:00:00"), slot("2026-11-20T10:00:00")]
    nine = slot("2026-11-20T09:00:00")
    assert rows[-2]["state"] == _approx(consumption(nine) + consumption(LATE))  # not + 0
    assert_counted_once(rows)
    # The second fetch started where the statistics stood.
    assert api.calls("readings")[-1].query["from"] == "2026-11-20T09:00:00"
    await hass.config_entries.async_unload(node.entry_id)


async def test_an_outage_is_backfilled_after_a_restart_and_nothing_counted_twice(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    api: GlowmarktServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    freezer.move_to(NOW)
    deliver(api, IMPORT_ID, FIRST, LATE)
    deliver(api, EXPORT_ID, FIRST, LATE)
    node = await start_node(hass, [IMPORT_ID, EXPORT_ID])
    before = await hourly(hass, IMPORT_STAT)
    await hass.config_entries.async_unload(node.entry_id)

    # Home Assistant is off for two days; meanwhile the DCC delivers them.
    freezer.move_to(NOW + timedelta(days=2))
    deliver(api, IMPORT_ID, LATE, slot("2026-11-22T10:00:00"))
    deliver(api, EXPORT_ID, LATE, slot("2026-11-22T10:00:00"))
    assert await hass.config_entries.async_setup(node.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    # And once more, as after another restart with nothing new.
    await hass.config_entries.async_reload(node.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    for stat in (IMPORT_STAT, statistic_id(EXPORT_ID)):
        rows = await hourly(hass, stat)
        assert starts(rows) == expected_hours(FIRST, slot("2026-11-22T10:00:00"))
        assert_counted_once(rows)
    after = await hourly(hass, IMPORT_STAT)
    assert after[: len(before)] == before  # the hours imported before are untouched
    delivered = sum(
        consumption(when)
        for when in half_hours(FIRST, 5 * 48 + 20)
        if when.replace(minute=0) != NEVER_DELIVERED.replace(minute=0)
    )
    assert after[-1]["sum"] == _approx(delivered)
    await hass.config_entries.async_unload(node.entry_id)


async def test_an_api_failure_imports_nothing_and_the_next_fetch_catches_up(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    api: GlowmarktServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    freezer.move_to(NOW)
    api.fail_next("readings", 500)
    deliver(api, GAS_ID, FIRST, LATE)

    node = await start_node(hass, [GAS_ID])
    assert await hourly(hass, statistic_id(GAS_ID)) == []

    await fetch_again(hass, freezer, timedelta(minutes=31))

    rows = await hourly(hass, statistic_id(GAS_ID))
    assert starts(rows) == expected_hours(FIRST, slot("2026-11-20T09:00:00"))
    gas = hass.states.get(meter_entity(hass, node, "gas_energy"))
    assert gas is not None
    assert float(gas.state) == _approx(round(rows[-1]["sum"], 3))
    await hass.config_entries.async_unload(node.entry_id)


async def test_a_refused_password_raises_a_repair_issue_and_stops_asking(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    api: GlowmarktServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    freezer.move_to(NOW)
    deliver(api, IMPORT_ID, FIRST, LATE)
    node = await start_node(hass, [IMPORT_ID])
    subentry = next(iter(node.subentries.values()))
    issue_id = f"{ISSUE_GLOWMARKT_AUTH}_{node.entry_id}_{subentry.subentry_id}"
    api.password = "changed in the Bright app"
    api.expire_tokens()

    await fetch_again(hass, freezer, timedelta(minutes=31))

    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == ISSUE_GLOWMARKT_AUTH
    logins = len(api.calls("auth"))
    for _ in range(4):  # two hours: no more attempts with the refused password
        await fetch_again(hass, freezer, timedelta(minutes=31))
    assert len(api.calls("auth")) == logins
    total = hass.states.get(meter_entity(hass, node, "import_energy"))
    assert total is not None
    assert total.state == STATE_UNAVAILABLE  # silent meanwhile

    # The user enters the new password (Reconfigure updates the subentry): all is caught up.
    deliver(api, IMPORT_ID, LATE, slot("2026-11-20T14:00:00"))
    hass.config_entries.async_update_subentry(
        node, subentry, data={**subentry.data, CONF_PASSWORD: api.password}
    )
    await hass.async_block_till_done(wait_background_tasks=True)

    assert node.state is ConfigEntryState.LOADED
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    rows = await hourly(hass, IMPORT_STAT)
    assert starts(rows)[-1] == slot("2026-11-20T13:00:00")
    assert_counted_once(rows)
    total = hass.states.get(meter_entity(hass, node, "import_energy"))
    assert total is not None
    assert float(total.state) == _approx(round(rows[-1]["sum"], 3))
    assert subentry.subentry_type == SUBENTRY_GLOWMARKT
    await hass.config_entries.async_unload(node.entry_id)


async def test_a_meter_without_a_published_tariff_still_imports(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    api: GlowmarktServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    freezer.move_to(NOW)
    deliver(api, IMPORT_ID, FIRST, LATE)
    api.fail_next("tariff", 404)  # the supplier publishes none for this meter

    node = await start_node(hass, [IMPORT_ID])

    assert starts(await hourly(hass, IMPORT_STAT))[-1] == slot("2026-11-20T08:00:00")
    rate = hass.states.get(meter_entity(hass, node, "unit_rate"))
    assert rate is not None
    assert rate.state == STATE_UNAVAILABLE
    await hass.config_entries.async_unload(node.entry_id)


async def test_hours_without_new_data_from_the_dcc_keep_the_meter_available(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    api: GlowmarktServer,
    freezer: FrozenDateTimeFactory,
) -> None:
    freezer.move_to(NOW)
    deliver(api, IMPORT_ID, FIRST, LATE)
    node = await start_node(hass, [IMPORT_ID])
    before = await hourly(hass, IMPORT_STAT)

    for _ in range(6):  # three hours in which the DCC delivers nothing new
        await fetch_again(hass, freezer, timedelta(minutes=31))

    (meter,) = node.runtime_data.meters.values()
    assert ir.async_get(hass).async_get_issue(DOMAIN, meter.issue_id) is None
    total = hass.states.get(meter_entity(hass, node, "import_energy"))
    assert total is not None
    assert float(total.state) == _approx(round(before[-1]["sum"], 3))
    assert await hourly(hass, IMPORT_STAT) == before
    await hass.config_entries.async_unload(node.entry_id)
