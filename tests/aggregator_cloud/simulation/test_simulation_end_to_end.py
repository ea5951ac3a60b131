"""Simulated homes end to end: real `serve` (mosquitto + shadow service), one real `ShadowLink`
per home over mutual TLS, plans from the planner written with the boto3 `iot-data` client."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fractal.planner import Planner
from fractal.protocol import NodeDescriptor, TelemetryBatch, TelemetrySnapshot, parse

from aggregator_cloud.cli import main as aggregator_cli
from aggregator_cloud.demo import (
    SLOTS,
    demo_scenario,
    iot_data_client,
    push_plans,
    reported_plan,
)
from aggregator_cloud.planning.command import plan_scenario
from aggregator_cloud.simulation.fleet import FleetSettings, SimClock, SimulatedFleet
from tests.fractal.link.link_support import TelemetryObserver, until
from tests.support.local_aggregator import ROOT, TIMEOUT, LocalAggregator

HOMES = 3


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """Loopback sockets back after the Home Assistant plugin disabled them."""


@pytest.fixture(scope="module")
def aggregator() -> Iterator[LocalAggregator]:
    with LocalAggregator.started() as running:
        yield running


def classic_shadow(iot_data: Any, node: str) -> dict[str, Any]:
    """The classic shadow's `reported` state ({} while the node has written nothing)."""
    try:
        response = iot_data.get_thing_shadow(thingName=node)
    except iot_data.exceptions.ResourceNotFoundException:
        return {}
    reported: dict[str, Any] = json.loads(response["payload"].read())["state"]["reported"]
    return reported


def descriptor_tags(iot_data: Any, node: str) -> dict[str, str]:
    tags: dict[str, str] = (classic_shadow(iot_data, node).get("node") or {}).get("tags", {})
    return tags


def plan_position(iot_data: Any, node: str) -> str | None:
    """The id of the plan the node says (in its telemetry snapshot) it is executing."""
    telemetry = classic_shadow(iot_data, node).get("telemetry") or {}
    position = telemetry.get("plan") or {}
    plan_id: str | None = position.get("id")
    return plan_id


Shadows = dict[str, dict[str, Any]]


async def plan_for(
    fleet: SimulatedFleet, aggregator: LocalAggregator, observer: TelemetryObserver
) -> tuple[Shadows, Shadows, Shadows]:
    """Plan the fleet, push the plans, wait until every home executes its plan; the plans,
    the acknowledgements in `reported.plan` and the classic shadows."""
    now = fleet.clock.now()
    output = plan_scenario(demo_scenario([home.model for home in fleet.homes], now), now, Planner())
    plans = {home["id"]: home["plan"] for home in output["homes"]}
    iot_data = iot_data_client(aggregator.http_endpoint)
    push_plans(iot_data, plans)
    await until(lambda: set(plans) <= {b["node"] for b in observer.batches}, "telemetry")
    await until(
        lambda: all(plan_position(iot_data, node) == plan["id"] for node, plan in plans.items()),
        "every home reports the plan it executes",
    )
    acks = {node: reported_plan(iot_data, node) for node in plans}
    return plans, acks, {node: classic_shadow(iot_data, node) for node in plans}


async def test_every_home_acknowledges_its_plan_executes_it_and_sends_telemetry(
    aggregator: LocalAggregator,
) -> None:
    observer = TelemetryObserver(aggregator.data_dir)
    await observer.start()
    settings = FleetSettings(aggregator.data_dir, HOMES, speed=60, plan_check_interval_s=1)
    stop = asyncio.Event()
    try:
        async with SimulatedFleet(settings, SimClock(settings.speed)) as fleet:
            ticking = asyncio.create_task(fleet.run(stop))
            try:
                plans, acks, shadows = await plan_for(fleet, aggregator, observer)
            finally:
                stop.set()
                await ticking
    finally:
        await observer.stop()
    nodes = set(plans)
    assert len(nodes) == HOMES
    assert all(plan["slots"] == SLOTS for plan in plans.values())
    for node, ack in acks.items():
        assert ack["id"] == plans[node]["id"]
        assert ack["status"] in {"accepted", "executing"}
    for node, shadow in shadows.items():
        descriptor = parse(NodeDescriptor, shadow["node"]).document
        assert descriptor is not None
        assert descriptor.node == node
        assert {"street", "feeder", "community"} <= descriptor.tags.keys()
        snapshot = parse(TelemetrySnapshot, shadow["telemetry"]).document
        assert snapshot is not None
        assert snapshot.grid_w == (snapshot.load_w or 0) + (snapshot.ev_w or 0) + (
            snapshot.battery_w or 0
        ) - (snapshot.pv_w or 0)
    for batch in observer.batches:
        assert parse(TelemetryBatch, batch).ok, batch
    for node in nodes:
        seqs = [s["seq"] for b in observer.batches if b["node"] == node for s in b["samples"]]
        assert list(dict.fromkeys(seqs)) == sorted(set(seqs))  # in order (resends allowed)


async def test_the_simulate_command_runs_homes_with_extra_tags_until_terminated(
    aggregator: LocalAggregator,
) -> None:
    observer = TelemetryObserver(aggregator.data_dir)
    await observer.start()
    command = [
        sys.executable, "-m", "aggregator_cloud.cli", "simulate", "--homes", "2",
        "--data-dir", str(aggregator.data_dir), "--speed", "30", "--tags", "supplier=Co-op",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    iot_data = iot_data_client(aggregator.http_endpoint)
    try:
        batches = observer.batches
        await until(lambda: {"sim-001", "sim-002"} <= {b["node"] for b in batches}, "telemetry")
        await until(
            lambda: descriptor_tags(iot_data, "sim-002").get("supplier") == "Co-op",
            "the descriptor with the extra tag",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT):
            stdout, stderr = await process.communicate()
        await observer.stop()
    assert process.returncode == 0, stderr.decode()
    assert "simulating 2 homes" in stdout.decode()
    assert descriptor_tags(iot_data, "sim-001")["street"] == "Elm Road"


def test_simulate_without_a_running_aggregator_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert aggregator_cli(["simulate", "--homes", "2", "--data-dir", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "no aggregator is running" in error
    assert f"fractal-aggregator serve --data-dir {tmp_path}" in error


def test_simulate_refuses_bad_tags_and_bad_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def simulate(*extra: str) -> str:
        aggregator_cli(["simulate", "--data-dir", str(tmp_path), *extra])
        return capsys.readouterr().err

    assert aggregator_cli(["simulate", "--data-dir", str(tmp_path), "--homes", "2",
                           "--tags", "Street=Elm"]) == 2  # fmt: skip
    assert "key 'Street' must start with a lower-case letter" in capsys.readouterr().err
    assert "must be 1 to 1000" in simulate("--homes", "0")
    assert "speed must be above 0" in simulate("--homes", "2", "--speed", "-1")
