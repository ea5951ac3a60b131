"""A linked node in Home Assistant against a real local aggregator (`fractal-aggregator serve`:
mosquitto + the shadow service), through the real awsiotsdk link; plans are written with the
unchanged boto3 `iot-data` client, as the aggregator's planner does."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fractal_node import executor_runtime, node_link
from custom_components.fractal_node.const import (
    CONF_CA_PEM,
    CONF_CERTIFICATE_PEM,
    CONF_ENDPOINT,
    CONF_LINK,
    CONF_NODE_ID,
    CONF_PRIVATE_KEY_PEM,
    CONF_TAGS,
    DOMAIN,
)
from custom_components.fractal_node.fractal.protocol import LinkMode
from tests.fractal.devices.modbus_emulator import EmulatedDevice
from tests.fractal_node.conftest import StartEmulator
from tests.fractal_node.helpers import until
from tests.fractal_node.test_device_runtime import BATTERY_LIMITS, device, emulated
from tests.support.local_aggregator import LocalAggregator, NodeCredentials, iot_data


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """boto3 talks to the aggregator's REST side on 127.0.0.1."""


@pytest.fixture(scope="module")
def aggregator() -> Iterator[LocalAggregator]:
    with LocalAggregator.started() as running:
        yield running


@pytest.fixture
def config_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Each test's own config directory, so each node starts with an empty telemetry buffer."""
    hass.config.config_dir = str(tmp_path)
    return tmp_path


def linked_entry(
    aggregator: LocalAggregator,
    node: NodeCredentials,
    devices: list[ConfigSubentryData] | None = None,
) -> MockConfigEntry:
    """The entry the config flow makes from the files `enroll` wrote."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=node.node_id,
        unique_id=node.node_id,
        data={
            CONF_NAME: node.node_id,
            CONF_NODE_ID: node.node_id,
            CONF_LINK: "local",
            CONF_HOST: "127.0.0.1",
            CONF_PORT: aggregator.mqtt_port,
            CONF_CA_PEM: node.ca.read_text(),
            CONF_CERTIFICATE_PEM: node.certificate.read_text(),
            CONF_PRIVATE_KEY_PEM: node.private_key.read_text(),
        },
        options={CONF_TAGS: {"street": "Elm Road"}},
        subentries_data=devices or [],
    )


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def plan_doc(node: str, plan_id: str, devices: dict[str, Any]) -> dict[str, Any]:
    """A plan that started five minutes ago: four half-hour slots, valid for two hours."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    return {
        "schema": "fractal.plan.v1",
        "id": plan_id,
        "node": node,
        "issued": iso(start - timedelta(minutes=1)),
        "start": iso(start),
        "step": 1800,
        "slots": 4,
        "expiry": iso(start + timedelta(hours=2)),
        "source": "aggregator",
        "devices": devices,
    }


def write_desired_plan(aggregator: LocalAggregator, node: str, plan: object) -> None:
    payload = json.dumps({"state": {"desired": {"plan": plan}}})
    iot_data(aggregator).update_thing_shadow(thingName=node, shadowName="plan", payload=payload)


def shadow(aggregator: LocalAggregator, node: str, name: str | None = None) -> dict[str, Any]:
    """The `reported` side of a shadow ({} while there is none)."""
    client = iot_data(aggregator)
    try:
        if name is None:
            response = client.get_thing_shadow(thingName=node)
        else:
            response = client.get_thing_shadow(thingName=node, shadowName=name)
    except client.exceptions.ResourceNotFoundException:
        return {}
    reported: dict[str, Any] = json.loads(response["payload"].read())["state"].get("reported", {})
    return reported


def sensor(hass: HomeAssistant, node: str, key: str) -> str:
    state = hass.states.get(f"sensor.{node.replace('-', '_')}_{key}")
    assert state is not None, key
    return state.state


async def test_a_linked_node_connects_reports_and_answers_plans(
    hass: HomeAssistant, aggregator: LocalAggregator, config_dir: Path
) -> None:
    node = await hass.async_add_executor_job(aggregator.enroll, "hearth-1")
    entry = linked_entry(aggregator, node)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert (config_dir / ".storage" / DOMAIN / "hearth-1.telemetry.db").is_file()

    await until(lambda: sensor(hass, "hearth-1", "link_status") == "connected")
    # The descriptor reaches the classic shadow once connected.
    await hass.async_add_executor_job(
        _wait_for, lambda: "node" in shadow(aggregator, "hearth-1"), "descriptor"
    )
    descriptor = shadow(aggregator, "hearth-1")["node"]
    assert (descriptor["node"], descriptor["tags"], descriptor["link"]) == (
        "hearth-1",
        {"street": "Elm Road"},
        "local",
    )

    # A valid plan (no devices to command: this home only measures) runs at once.
    await hass.async_add_executor_job(
        write_desired_plan, aggregator, "hearth-1", plan_doc("hearth-1", "plan-1", {})
    )
    await until(lambda: sensor(hass, "hearth-1", "plan_status") == "executing")
    await hass.async_add_executor_job(
        _wait_for,
        lambda: shadow(aggregator, "hearth-1", "plan").get("plan", {}).get("id") == "plan-1",
        "ack of plan-1",
    )
    assert shadow(aggregator, "hearth-1", "plan")["plan"]["status"] == "executing"

    # A plan for a device this node does not have is rejected whole, with the reason.
    rejected = plan_doc(
        "hearth-1",
        "plan-2",
        {"battery": {"kind": "battery", "windows": [{"start": 0, "end": 4, "mode": "hold"}]}},
    )
    await hass.async_add_executor_job(write_desired_plan, aggregator, "hearth-1", rejected)
    await until(lambda: sensor(hass, "hearth-1", "plan_status") == "rejected")
    await hass.async_add_executor_job(
        _wait_for,
        lambda: shadow(aggregator, "hearth-1", "plan").get("plan", {}).get("id") == "plan-2",
        "ack of plan-2",
    )
    ack = shadow(aggregator, "hearth-1", "plan")["plan"]
    assert ack["status"] == "rejected"
    assert "has no device 'battery'" in ack["reason"]
    running = entry.runtime_data.link
    assert running is not None
    in_force = running.link.plan_in_force
    assert in_force is not None
    assert in_force.id == "plan-1"  # the old plan keeps running

    # Garbage is rejected too.
    await hass.async_add_executor_job(
        write_desired_plan, aggregator, "hearth-1", {"id": "plan-3", "slots": "many"}
    )
    await hass.async_add_executor_job(
        _wait_for,
        lambda: shadow(aggregator, "hearth-1", "plan").get("plan", {}).get("id") == "plan-3",
        "ack of plan-3",
    )
    assert shadow(aggregator, "hearth-1", "plan")["plan"]["status"] == "rejected"

    # Unloading stops the link: the CRT client is gone and the status says so.
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert running.link.status.state == "stopped"  # stop() waited for the CRT client
    assert sensor(hass, "hearth-1", "link_status") == "unavailable"


async def test_telemetry_every_ten_seconds_reaches_the_aggregator(
    hass: HomeAssistant,
    aggregator: LocalAggregator,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(node_link, "TELEMETRY_INTERVAL", timedelta(seconds=0.2))
    node = await hass.async_add_executor_job(aggregator.enroll, "hearth-2")
    entry = linked_entry(aggregator, node)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await until(lambda: sensor(hass, "hearth-2", "link_status") == "connected")
    # The broker acknowledged a sample: last telemetry is its time.
    await until(lambda: sensor(hass, "hearth-2", "last_telemetry") not in ("unknown", ""))
    reported = datetime.fromisoformat(sensor(hass, "hearth-2", "last_telemetry"))
    assert abs((datetime.now(UTC) - reported).total_seconds()) < 30
    await hass.async_add_executor_job(
        _wait_for, lambda: "telemetry" in shadow(aggregator, "hearth-2"), "snapshot"
    )
    snapshot = shadow(aggregator, "hearth-2")["telemetry"]
    assert snapshot["node"] == "hearth-2"
    assert snapshot["seq"] >= 1
    assert "link" in shadow(aggregator, "hearth-2")
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_a_home_assistant_restart_loses_and_repeats_no_telemetry(
    hass: HomeAssistant,
    aggregator: LocalAggregator,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(node_link, "TELEMETRY_INTERVAL", timedelta(seconds=0.2))
    node = await hass.async_add_executor_job(aggregator.enroll, "hearth-7")
    entry = linked_entry(aggregator, node)
    entry.add_to_hass(hass)

    for run in (1, 2):  # the second run is Home Assistant started again on the same files
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        await until(lambda: sensor(hass, "hearth-7", "link_status") == "connected")
        stored_before = len(await hass.async_add_executor_job(stored_seqs, aggregator, "hearth-7"))
        await hass.async_add_executor_job(
            _wait_for,
            lambda before=stored_before: len(stored_seqs(aggregator, "hearth-7")) >= before + 3,
            f"samples of run {run}",
        )
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()

    seqs = await hass.async_add_executor_job(stored_seqs, aggregator, "hearth-7")
    # Numbering went on after the restart (a restart at seq 1 would be dropped as duplicates by
    # the store, and the second run's samples lost): one contiguous run, nothing missing.
    assert seqs == list(range(1, len(seqs) + 1))


def stored_seqs(aggregator: LocalAggregator, node: str) -> list[int]:
    """Sample seqs the aggregator's telemetry store kept for `node` in the last hour."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        url = f"{aggregator.http_endpoint}/api/nodes/{node}/telemetry"
        with opener.open(url, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:  # not registered yet
            return []
        raise
    return sorted(sample["seq"] for sample in body["samples"])


def _wait_for(condition: Any, what: str, limit: float = 30.0) -> None:
    """Poll the aggregator from a worker thread (boto3 blocks)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


async def linked_battery_home(
    hass: HomeAssistant,
    aggregator: LocalAggregator,
    modbus_server: StartEmulator,
    monkeypatch: pytest.MonkeyPatch,
    node_id: str,
) -> tuple[MockConfigEntry, EmulatedDevice, str]:
    """A linked node with a grid meter importing 500 W and a battery at 57.5 %, its executor
    and telemetry ticking every 0.2 s: (entry, the emulated battery, the battery's device id)."""
    monkeypatch.setattr(executor_runtime, "TICK_INTERVAL", timedelta(seconds=0.2))
    monkeypatch.setattr(node_link, "TELEMETRY_INTERVAL", timedelta(seconds=0.2))
    battery = emulated("generic_battery", power=0, soc=57.5)
    server = await modbus_server({1: emulated("eastron_sdm230", power=500.0), 3: battery})
    node = await hass.async_add_executor_job(aggregator.enroll, node_id)
    entry = linked_entry(
        aggregator,
        node,
        [
            device(server.port, 1, "eastron_sdm230", "grid_meter"),
            device(server.port, 3, "generic_battery", "battery", limits=BATTERY_LIMITS),
        ],
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    (battery_id,) = (
        device_id
        for device_id, node_device in entry.runtime_data.devices.items()
        if node_device.role == "battery"
    )
    return entry, battery, battery_id


async def test_a_charge_window_reaches_the_battery_within_its_envelope(
    hass: HomeAssistant,
    aggregator: LocalAggregator,
    config_dir: Path,
    modbus_server: StartEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry, battery, battery_id = await linked_battery_home(
        hass, aggregator, modbus_server, monkeypatch, "hearth-3"
    )
    node_device = entry.runtime_data.devices[battery_id]
    descriptor = entry.runtime_data.runtime.descriptor()
    capabilities = {device.id: device.capabilities for device in descriptor.devices}
    assert capabilities[battery_id] == ("balance", "charge", "discharge", "hold", "off")

    # Before any plan: the default plan balances against the 500 W import (the emulated meter
    # does not follow, so the discharge grows each tick up to the envelope's 2500 W).
    mode_sensor = f"sensor.{node_device.subentry.title.replace(' ', '_')}_current_mode"
    await until(lambda: _state(hass, mode_sensor) == "balance")
    await until(lambda: battery_setpoint(battery) == (-2500, 2))  # discharge, at most 2500 W

    await until(lambda: sensor(hass, "hearth-3", "link_status") == "connected")
    plan = plan_doc(
        "hearth-3",
        "charge-1",
        {
            battery_id: {
                "kind": "battery",
                "windows": [
                    {"start": 0, "end": 2, "mode": "charge", "value": 5000},
                    {"start": 2, "end": 4, "mode": "hold"},
                ],
            }
        },
    )
    await hass.async_add_executor_job(write_desired_plan, aggregator, "hearth-3", plan)
    await until(lambda: sensor(hass, "hearth-3", "plan_status") == "executing")
    # Accepted, with the part the envelope clamps named in the acknowledgement.
    ack = (await hass.async_add_executor_job(shadow, aggregator, "hearth-3", "plan"))["plan"]
    assert ack["clamped"] == [
        {
            "path": f"devices.{battery_id}.windows[0].value",
            "message": "charge 5000 W limited to max_charge_w 3000 W",
        }
    ]
    # 5000 W asked, the installer's 3000 W maximum written, with the mode that switches it on.
    await until(lambda: battery_setpoint(battery) == (3000, 1))
    state = hass.states.get(mode_sensor)
    assert state is not None
    assert state.state == "charge"
    assert state.attributes["setpoint"] == 3000
    assert state.attributes["plan_id"] == "charge-1"
    assert any("max_charge_w" in reason for reason in state.attributes["reasons"])
    next_change = datetime.fromisoformat(sensor(hass, "hearth-3", "next_plan_change"))
    assert next_change == datetime.fromisoformat(plan["start"]) + timedelta(hours=1)
    # The snapshot carries the battery's state of charge and the plan position.
    await hass.async_add_executor_job(
        _wait_for, lambda: "telemetry" in shadow(aggregator, "hearth-3"), "snapshot"
    )
    snapshot = shadow(aggregator, "hearth-3")["telemetry"]
    assert snapshot["soc_pct"] == 57.5
    assert snapshot["grid_w"] == 500
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def battery_setpoint(battery: EmulatedDevice) -> tuple[int, int]:
    """(power_setpoint W, mode code) as the emulated battery's registers hold them."""
    high, low, *_ = battery.raw("power_setpoint")
    power = (high << 16) | low
    if power >= 1 << 31:
        power -= 1 << 32
    return power, battery.raw("mode")[0]


def _state(hass: HomeAssistant, entity_id: str) -> str | None:
    state = hass.states.get(entity_id)
    return state.state if state else None


async def test_replan_asks_the_aggregator_through_the_classic_shadow(
    hass: HomeAssistant, aggregator: LocalAggregator, config_dir: Path
) -> None:
    node = await hass.async_add_executor_job(aggregator.enroll, "hearth-4")
    entry = linked_entry(aggregator, node)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    before = datetime.now(UTC)
    await hass.services.async_call(
        DOMAIN, "replan", {"config_entry_id": entry.entry_id}, blocking=True
    )  # asked before the link is up: written once connected
    await hass.async_add_executor_job(
        _wait_for,
        lambda: "replan_requested" in shadow(aggregator, "hearth-4"),
        "replan request",
    )
    requested = datetime.fromisoformat(shadow(aggregator, "hearth-4")["replan_requested"])
    assert before - timedelta(seconds=1) <= requested <= datetime.now(UTC)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_a_broker_restart_is_logged_once_down_and_once_back(
    hass: HomeAssistant,
    aggregator: LocalAggregator,
    config_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = await hass.async_add_executor_job(aggregator.enroll, "hearth-5")
    entry = linked_entry(aggregator, node)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await until(lambda: sensor(hass, "hearth-5", "link_status") == "connected")

    statuses: list[str] = []
    entry.runtime_data.runtime.add_listener(lambda state: statuses.append(state.link_status))
    await hass.async_add_executor_job(aggregator.restart)  # same ports, same data
    await until(lambda: "disconnected" in statuses and statuses[-1] == "connected", limit=60)

    def logged(text: str) -> int:
        return sum(text in record.getMessage() for record in caplog.records)

    assert logged("Node hearth-5 cannot reach its aggregator") == 1
    assert logged("Node hearth-5 is connected to its aggregator again") == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_a_node_off_its_plan_reports_the_deviation_in_its_snapshot(
    hass: HomeAssistant,
    aggregator: LocalAggregator,
    config_dir: Path,
    modbus_server: StartEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry, _battery, battery_id = await linked_battery_home(
        hass, aggregator, modbus_server, monkeypatch, "hearth-5"
    )
    await until(lambda: sensor(hass, "hearth-5", "link_status") == "connected")
    plan = plan_doc(
        "hearth-5",
        "expects-20",
        {battery_id: {"kind": "battery", "windows": [{"start": 0, "end": 4, "mode": "hold"}]}},
    )
    # The plan expects 20 % all along, within 5 %; the battery holds 57.5 %.
    plan["expected"] = {"soc_pct": [20, 20, 20, 20], "grid_w": [500, 500, 500, 500]}
    plan["tolerance"] = {"soc_pct": 5, "grid_w": 1000}
    await hass.async_add_executor_job(write_desired_plan, aggregator, "hearth-5", plan)
    await until(lambda: sensor(hass, "hearth-5", "plan_status") == "executing")

    def deviations() -> object:
        return shadow(aggregator, "hearth-5").get("telemetry", {}).get("deviations")

    await hass.async_add_executor_job(
        _wait_for, lambda: deviations() == ["soc_pct"], "the deviation in the snapshot"
    )
    snapshot = (await hass.async_add_executor_job(shadow, aggregator, "hearth-5"))["telemetry"]
    assert snapshot["plan"]["id"] == "expects-20"
    assert snapshot["soc_pct"] == 57.5
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def test_a_node_linked_to_aws_batches_its_telemetry_and_a_local_one_does_not() -> None:
    # On AWS every telemetry message costs a rule, a Lambda run and an S3 object.
    data = {
        CONF_HOST: "aggregator.local",
        CONF_ENDPOINT: "abc-ats.iot.eu-west-2.amazonaws.com",
        CONF_CA_PEM: "ca",
        CONF_CERTIFICATE_PEM: "certificate",
        CONF_PRIVATE_KEY_PEM: "key",
    }
    aws = node_link.link_config(LinkMode.AWS, "home-1", data)
    local = node_link.link_config(LinkMode.LOCAL, "home-1", data)

    assert aws is not None
    assert local is not None
    assert aws.batch_every_s == 300
    assert local.batch_every_s == 0
    assert node_link.link_config(LinkMode.STANDALONE, "home-1", data) is None
