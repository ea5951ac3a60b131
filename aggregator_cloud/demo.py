"""`fractal-aggregator demo`: the embedded aggregator with simulated homes, and a page to look at.

In one process: `serve` (mosquitto + shadow service, and whatever the runtime wires in), a
simulated fleet (`aggregator_cloud.simulation`), one planning round for it, and each plan
written to its home's `plan` named shadow through the boto3 `iot-data` client, as the cloud
does. Then it keeps running until Ctrl-C (or `--run-for` seconds, for tests).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import math
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import boto3  # type: ignore[import-untyped]  # no stubs in the environment
from aiomqtt import MqttError
from fractal.planner import Planner, Scenario, parse_scenario

from aggregator_cloud.local.broker import BrokerError
from aggregator_cloud.local.runtime import DataLayout, ServeSettings, free_port, serve
from aggregator_cloud.local.shadow.rest import NotLoopback
from aggregator_cloud.planning.command import plan_scenario
from aggregator_cloud.signals import run_until_signalled
from aggregator_cloud.simulation.fleet import (
    FleetSettings,
    NoAggregator,
    Runtime,
    SimClock,
    SimulatedFleet,
    SimulatedHome,
    read_runtime,
)
from aggregator_cloud.simulation.home import HomeModel
from aggregator_cloud.simulation.homes import EXPORT_MAX_W, IMPORT_MAX_W

STEP_S: Final = 1800
SLOTS: Final = 96  # 48 hours
EXPORT_P_PER_KWH: Final = 15.0
ACK_WAIT_S: Final = 60.0
"""How long the demo waits for every home to acknowledge before it says who did not."""
POLL_S: Final = 0.25
ACCEPTED: Final = frozenset({"accepted", "executing"})

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoSettings:
    fleet: FleetSettings
    """The simulated homes, and the data directory everything lives in."""
    http_port: int = 8080
    mqtt_port: int = 8883
    run_for: float | None = None


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    fleet = FleetSettings(args.data_dir, args.homes, args.speed, args.seed)
    settings = DemoSettings(fleet, args.http_port, args.mqtt_port, args.run_for)
    errors = (BrokerError, NotLoopback, NoAggregator, OSError, MqttError, ValueError)
    return run_until_signalled("demo", lambda stop: run_demo(settings, stop), errors)


async def run_demo(settings: DemoSettings, stop: asyncio.Event, say: Say = print) -> None:
    """Serve, simulate, plan, push; then run until `stop` (or `settings.run_for` seconds)."""
    fleet = SimulatedFleet(settings.fleet, SimClock(settings.fleet.speed))  # checks the numbers
    layout = DataLayout(settings.fleet.data_dir)
    _refuse_second_aggregator(layout)
    serve_settings = ServeSettings(
        settings.fleet.data_dir,
        mqtt_port=_usable_port(settings.mqtt_port, "MQTT", say),
        http_port=_usable_port(settings.http_port, "HTTP", say),
    )
    serve_stop = asyncio.Event()
    serving = asyncio.create_task(serve(serve_settings, serve_stop))
    try:
        runtime = await _until_serving(layout, serving)
        await _run_fleet(fleet, settings, runtime=runtime, serving=serving, stop=stop, say=say)
    finally:
        serve_stop.set()
        await serving


async def _run_fleet(
    fleet: SimulatedFleet,
    settings: DemoSettings,
    *,
    runtime: Runtime,
    serving: asyncio.Task[None],
    stop: asyncio.Event,
    say: Say,
) -> None:
    """The simulated fleet, its first plans and their answers; then new plans at every slot
    boundary of simulated time (as a scheduler would) until `stop`, or until `serving` fails
    (a dead broker is an error to report, not something to wait out)."""
    rounds = _PlanRounds(iot_data_client(runtime.http_endpoint), Planner())
    async with fleet:
        fleet_stop = asyncio.Event()
        tasks = [asyncio.create_task(fleet.run(fleet_stop))]
        try:
            start = await _first_plans(fleet, rounds, runtime, stop, say)
            say(f"\nThe fleet page: {runtime.http_endpoint}/  (Ctrl-C stops the demo)")
            replanning = _replan_each_slot(fleet, rounds, start, fleet_stop, say)
            tasks.append(asyncio.create_task(replanning))
            await _until_stopped(stop, [*tasks, serving], settings.run_for)
        finally:
            fleet_stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


def _refuse_second_aggregator(layout: DataLayout) -> None:
    try:
        read_runtime(layout.root)
    except NoAggregator:
        layout.runtime_file.unlink(missing_ok=True)  # stale, from a run that was killed
        return
    raise NoAggregator(
        f"an aggregator is already running on {layout.root} (see {layout.runtime_file});"
        " stop it first, or give the demo another --data-dir"
    )


def _usable_port(port: int, what: str, say: Say) -> int:
    """`port`, or a free one (said out loud) when something else already listens there."""
    if port == 0 or not _taken(port):
        return port
    replacement = free_port()
    say(f"port {port} ({what}) is taken by another program: using {replacement} instead")
    return replacement


def _taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


async def _until_serving(layout: DataLayout, serving: asyncio.Task[None]) -> Runtime:
    """Wait until `serve` wrote runtime.json; its own error if it failed to start."""
    while not layout.runtime_file.exists():
        done, _ = await asyncio.wait({serving}, timeout=POLL_S)
        if done:
            serving.result()
            raise RuntimeError("the aggregator stopped before it was ready")
    return read_runtime(layout.root)


async def _until_stopped(
    stop: asyncio.Event, tasks: Sequence[asyncio.Task[None]], run_for: float | None
) -> None:
    """Until Ctrl-C or `run_for` seconds; at once with its error if a watched task ended."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({stopped, *tasks}, timeout=run_for, return_when="FIRST_COMPLETED")
    finally:
        stopped.cancel()
    for task in tasks:
        if task.done():
            task.result()


@dataclass
class _PlanRounds:
    """Plan the whole fleet and write every plan to its home's `plan` shadow."""

    iot_data: Any
    planner: Planner

    async def run(self, fleet: SimulatedFleet) -> tuple[Scenario, dict[str, Any], dict[str, Any]]:
        """The scenario, each home's planner output and the plans written."""
        now = fleet.clock.now()
        scenario = demo_scenario([home.model for home in fleet.homes], now)
        output = await asyncio.to_thread(plan_scenario, scenario, now, self.planner)
        planned = {home["id"]: home for home in output["homes"]}
        plans = {node: home["plan"] for node, home in planned.items() if home["plan"] is not None}
        await asyncio.to_thread(push_plans, self.iot_data, plans)
        return scenario, planned, plans


async def _first_plans(
    fleet: SimulatedFleet, rounds: _PlanRounds, runtime: Runtime, stop: asyncio.Event, say: Say
) -> datetime:
    """Plan, write, wait for the answers and say what happened; the plans' start."""
    scenario, planned, plans = await rounds.run(fleet)
    say(f"{len(fleet.homes)} simulated homes, linked over MQTT with mutual TLS")
    say(f"{len(plans)} plans of {SLOTS} half-hour slots from {scenario.start:%Y-%m-%d %H:%M} UTC")
    say(f"written to each home's `plan` shadow through {runtime.http_endpoint}")
    acks = await _acknowledgements(rounds.iot_data, plans, stop)
    for home in fleet.homes:
        say(_home_line(home, planned[home.node_id], acks.get(home.node_id)))
    accepted = sum(1 for ack in acks.values() if ack.get("status") in ACCEPTED)
    say(f"{accepted} of {len(plans)} homes acknowledged their plan as accepted")
    return scenario.start


async def _replan_each_slot(
    fleet: SimulatedFleet, rounds: _PlanRounds, start: datetime, stop: asyncio.Event, say: Say
) -> None:
    """New plans from each slot's start (so each round's plans have new ids) until `stop`."""
    next_start = start + timedelta(seconds=STEP_S)
    while await _sleep_until(fleet.clock, next_start, stop):
        scenario, _, plans = await rounds.run(fleet)
        say(f"{scenario.start:%Y-%m-%d %H:%M} UTC: re-planned, {len(plans)} plans written")
        next_start = scenario.start + timedelta(seconds=STEP_S)


async def _sleep_until(clock: SimClock, when: datetime, stop: asyncio.Event) -> bool:
    """Wait until simulated time `when`; False if `stop` came first."""
    while (now := clock.now()) < when:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), clock.wall_seconds(when - now))
        if stop.is_set():
            return False
    return True


def _home_line(
    home: SimulatedHome, planned: Mapping[str, Any], ack: Mapping[str, Any] | None
) -> str:
    """`sim-001  1 Elm Road  F1  4 kWp, 9.5 kWh battery  £1.23/48 h  executing`."""
    spec = home.spec
    devices = [f"{spec.pv_kwp:g} kWp"]
    if spec.battery is not None:
        devices.append(f"{spec.battery.capacity_wh / 1000:g} kWh battery")
    if spec.ev is not None:
        devices.append("EV")
    answer = "no plan: " + "; ".join(planned.get("plan_problems", []))
    if planned["plan"] is not None:
        answer = "no answer yet"
    if ack is not None:
        answer = str(ack.get("status")) + (f" ({ack['reason']})" if ack.get("reason") else "")
    cost = f"£{planned['cost_p'] / 100:.2f}/48 h"
    return (
        f"  {home.node_id}  {spec.name:<15} {spec.tags.get('feeder', ''):<3}"
        f" {', '.join(devices):<28} {cost:>12}  plan {answer}"
    )


def demo_scenario(homes: Sequence[HomeModel], now: datetime) -> Scenario:
    """48 hours from the current half hour: each home's own forecasts, an Agile-like import
    price (cheap at night, dear 16:00-19:00) and a flat export price."""
    start = _slot_floor(now)
    times = [start + timedelta(seconds=STEP_S * slot) for slot in range(SLOTS)]
    prices = [agile_like_price(when) for when in times]
    return parse_scenario(
        {
            "start": start.isoformat(),
            "step_seconds": STEP_S,
            "homes": [_scenario_home(home, start, prices) for home in homes],
        }
    )


def _scenario_home(home: HomeModel, start: datetime, prices: list[float]) -> dict[str, Any]:
    pv_kw, load_kw = home.forecast(start, STEP_S, SLOTS)
    entry: dict[str, Any] = {
        "id": home.spec.node_id,
        "tags": dict(home.spec.tags),
        "pv_kw": pv_kw,
        "load_kw": load_kw,
        "import_p_per_kwh": prices,
        "export_p_per_kwh": [EXPORT_P_PER_KWH] * SLOTS,
        "grid": {"import_max_kw": IMPORT_MAX_W / 1000, "export_max_kw": EXPORT_MAX_W / 1000},
    }
    battery = home.spec.battery
    if battery is not None:
        entry["battery"] = {
            "capacity_kwh": battery.capacity_wh / 1000,
            "soc_kwh": round(home.soc_wh / 1000, 3),
            "soc_min_kwh": battery.capacity_wh * battery.soc_min_pct / 100_000,
            "soc_max_kwh": battery.capacity_wh * battery.soc_max_pct / 100_000,
            "charge_kw": battery.max_charge_w / 1000,
            "discharge_kw": battery.max_discharge_w / 1000,
            "charge_efficiency": battery.efficiency,
            "discharge_efficiency": battery.efficiency,
        }
    ev = home.spec.ev
    if ev is not None:
        session = ev.session(start)
        departure = session + timedelta(hours=24 - ev.arrival_hour + ev.departure_hour)
        entry["ev"] = {
            "arrival": max(session, start).isoformat(),
            "departure": departure.isoformat(),
            "energy_kwh": ev.session_wh / 1000,
            "max_kw": ev.max_w / 1000,
        }
    return entry


def agile_like_price(when: datetime) -> float:
    """Import price, p/kWh, shaped like Octopus Agile: cheapest around 03:00, a dear
    16:00-19:00 peak, a middling day."""
    hour = when.astimezone(UTC).hour + when.minute / 60
    if 16 <= hour < 19:
        return round(34 + 4 * math.sin(math.pi * (hour - 16) / 3), 2)
    if hour < 6:
        return round(8 + 1.5 * abs(hour - 3), 2)
    if hour >= 22:
        return round(14 - 2 * (hour - 22), 2)
    return round(19 + 3 * math.exp(-(((hour - 8) / 1.5) ** 2)), 2)


def _slot_floor(when: datetime) -> datetime:
    seconds = int(when.timestamp()) // STEP_S * STEP_S
    return datetime.fromtimestamp(seconds, UTC)


def iot_data_client(endpoint: str) -> Any:
    """The unchanged boto3 `iot-data` client; the local shadow service ignores credentials."""
    return boto3.client(
        "iot-data",
        endpoint_url=endpoint,
        region_name="eu-west-2",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def push_plans(iot_data: Any, plans: Mapping[str, Mapping[str, Any]]) -> None:
    """Write each plan to its node's `plan` named shadow, `desired.plan`."""
    for node, plan in plans.items():
        payload = json.dumps({"state": {"desired": {"plan": plan}}})
        iot_data.update_thing_shadow(thingName=node, shadowName="plan", payload=payload)


def reported_plan(iot_data: Any, node: str) -> dict[str, Any]:
    """The node's acknowledgement in the `plan` shadow's `reported.plan` ({} if none)."""
    response = iot_data.get_thing_shadow(thingName=node, shadowName="plan")
    document = json.loads(response["payload"].read())
    ack: dict[str, Any] = document.get("state", {}).get("reported", {}).get("plan") or {}
    return ack


async def _acknowledgements(
    iot_data: Any, plans: Mapping[str, Mapping[str, Any]], stop: asyncio.Event
) -> dict[str, dict[str, Any]]:
    """Each node's answer to the plan pushed to it, once all answered (or after a while)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ACK_WAIT_S
    answers: dict[str, dict[str, Any]] = {}
    while True:
        for node, plan in plans.items():
            ack = await asyncio.to_thread(reported_plan, iot_data, node)
            if ack.get("id") == plan["id"]:
                answers[node] = ack
        if len(answers) == len(plans) or stop.is_set() or loop.time() > deadline:
            return answers
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_S)
