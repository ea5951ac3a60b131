"""`fractal-aggregator simulate` and `fractal-aggregator demo`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from aiomqtt import MqttError
from fractal.tags import parse_tags

from aggregator_cloud import demo
from aggregator_cloud.signals import run_until_signalled

from .fleet import FleetSettings, NoAggregator, SimClock, SimulatedFleet, read_runtime


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate = subparsers.add_parser(
        "simulate", help="run simulated homes against the aggregator serving --data-dir"
    )
    simulate.add_argument("--homes", type=int, required=True, help="how many homes (1-1000)")
    simulate.add_argument("--data-dir", type=Path, required=True)
    _simulation_options(simulate)
    simulate.add_argument(
        "--tags",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="tags added to every home (they override street, feeder and community)",
    )
    simulate.set_defaults(run=run_simulate)

    demo_parser = subparsers.add_parser(
        "demo", help="the embedded aggregator with simulated homes, and a page to look at"
    )
    demo_parser.add_argument("--data-dir", type=Path, required=True)
    demo_parser.add_argument("--homes", type=int, default=12, help="how many homes (1-1000)")
    demo_parser.add_argument(
        "--http-port", type=int, default=8080, help="fleet page and iot-data API (0: any free)"
    )
    demo_parser.add_argument(
        "--mqtt-port", type=int, default=8883, help="the nodes' MQTT listener (0: any free)"
    )
    _simulation_options(demo_parser)
    demo_parser.add_argument("--run-for", type=float, default=None, help=argparse.SUPPRESS)
    demo_parser.set_defaults(run=demo.run)


def _simulation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the same seed, the same homes")


def run_simulate(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    tags = parse_tags("\n".join(args.tags))
    if not tags.ok:
        print("fractal-aggregator simulate: " + "; ".join(tags.problems), file=sys.stderr)
        return 2
    settings = FleetSettings(args.data_dir, args.homes, args.speed, args.seed, tags.tags)
    errors = (NoAggregator, OSError, MqttError, ValueError)
    return run_until_signalled("simulate", lambda stop: simulate(settings, stop), errors)


async def simulate(settings: FleetSettings, stop: asyncio.Event) -> None:
    """Run the fleet against the aggregator serving `settings.data_dir` until `stop`."""
    fleet = SimulatedFleet(settings, SimClock(settings.speed))  # checks the numbers first
    runtime = read_runtime(settings.data_dir)
    async with fleet:
        print(
            f"simulating {len(fleet.homes)} homes against mqtts://{runtime.mqtt_host}:"
            f"{runtime.mqtt_port} at {settings.speed:g}x (Ctrl-C stops)",
            flush=True,
        )
        await fleet.run(stop)
