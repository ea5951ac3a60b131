"""`fractal-aggregator serve` and `fractal-aggregator enroll`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from aiomqtt import MqttError

from aggregator_cloud.views import CarbonDataError

from .broker import BrokerError
from .ca import CertificateAuthority, InvalidNodeId, write_private
from .runtime import DataLayout, ServeSettings, serve
from .scheduler import ScheduleSettings
from .shadow.rest import NotLoopback


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve_parser = subparsers.add_parser(
        "serve", help="run the local broker and shadow service (the embedded aggregator)"
    )
    serve_parser.add_argument("--data-dir", type=Path, required=True)
    serve_parser.add_argument(
        "--host", default="127.0.0.1", help="address of the nodes' mTLS MQTT listener"
    )
    serve_parser.add_argument(
        "--mqtt-port", type=int, default=8883, help="0 picks a free port (see DATA/runtime.json)"
    )
    serve_parser.add_argument(
        "--http-port", type=int, default=8080, help="0 picks a free port (see DATA/runtime.json)"
    )
    serve_parser.add_argument(
        "--http-host", default="127.0.0.1", help="loopback address of the iot-data REST API"
    )
    serve_parser.add_argument(
        "--carbon-intensity",
        type=Path,
        help="the grid's carbon intensity for the dashboards: a saved response of the National "
        "Grid carbon-intensity API (national or regional JSON)",
    )
    serve_parser.add_argument(
        "--plan-every",
        type=_positive_float,
        default=30.0,
        metavar="MINUTES",
        help="plan every enrolled node this often (also at once when DATA/inputs changes)",
    )
    serve_parser.add_argument(
        "--replan-cooldown",
        type=_positive_float,
        default=5.0,
        metavar="MINUTES",
        help="at most one re-plan per node for deviations in this time",
    )
    serve_parser.add_argument(
        "--retention-days",
        type=_positive_float,
        metavar="DAYS",
        help="delete telemetry samples older than this (checked hourly); default: keep all",
    )
    serve_parser.set_defaults(run=run_serve)

    enroll_parser = subparsers.add_parser(
        "enroll", help="issue a node's certificate and key (an installer enrols a home)"
    )
    enroll_parser.add_argument("node_id", metavar="NODE_ID")
    enroll_parser.add_argument("--data-dir", type=Path, required=True)
    enroll_parser.add_argument("--out", type=Path, required=True, help="directory to write to")
    enroll_parser.set_defaults(run=run_enroll)


def run_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = ServeSettings(
        args.data_dir,
        args.host,
        args.mqtt_port,
        args.http_port,
        args.http_host,
        args.carbon_intensity,
        ScheduleSettings(
            interval_s=args.plan_every * 60, deviation_cooldown_s=args.replan_cooldown * 60
        ),
        retention_days=args.retention_days,
    )
    try:
        asyncio.run(_serve_until_signalled(settings))
    except (BrokerError, NotLoopback, OSError, MqttError, CarbonDataError) as error:
        print(f"fractal-aggregator serve: {error}", file=sys.stderr)
        return 1
    return 0


async def _serve_until_signalled(settings: ServeSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve(settings, stop)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def run_enroll(args: argparse.Namespace) -> int:
    """Write NODE_ID.cert.pem, NODE_ID.private.key (0600) and ca.pem into --out."""
    try:
        authority = CertificateAuthority.open(DataLayout(args.data_dir).ca_dir)
        issued = authority.issue_node_certificate(args.node_id)
    except InvalidNodeId as error:
        print(f"fractal-aggregator enroll: {error}", file=sys.stderr)
        return 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.node_id}.cert.pem").write_text(issued.certificate_pem)
    write_private(out / f"{args.node_id}.private.key", issued.private_key_pem)
    (out / "ca.pem").write_text(authority.certificate_pem)
    print(f"enrolled {args.node_id}: certificate, key and CA written to {out}")
    return 0
