"""`serve`: the broker and the shadow service, together, until asked to stop.

Everything lives in the data directory and survives restarts::

    DATA/ca/            the certificate authority (0700; ca.key 0600)
    DATA/mosquitto/     generated mosquitto.conf, acl, broker certificate, mosquitto.log
    DATA/service/       the shadow service's client certificate (0700)
    DATA/shadows.sqlite3 (0600)
    DATA/fleet.sqlite3  the fleet registry and telemetry store (0600)
    DATA/runtime.json   where the running services listen (for local tools)
    DATA/inputs/*.json  the planning inputs: tariffs and forecasts (docs/aggregator.md)
    DATA/planning.json  the planning scheduler's last dispatch: when, why, each node's outcome
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from aggregator_cloud.reports.events import stored_events
from aggregator_cloud.views import load_intensity

from .broker import Broker, BrokerError, BrokerSettings
from .ca import CertificateAuthority, write_private
from .fleet_data import FleetData, fleet_data
from .scheduler import InputsFolder, PlanScheduler, ScheduleSettings
from .shadow.rest import build_app, check_loopback
from .shadow.service import BrokerConnection, ShadowService, service_tls_context
from .shadow.store import ShadowStore

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeSettings:
    data_dir: Path
    host: str = "127.0.0.1"
    mqtt_port: int = 8883
    http_port: int = 8080
    http_host: str = "127.0.0.1"
    carbon_intensity: Path | None = None
    """The grid's carbon intensity for the dashboards (National Grid API JSON), if any."""
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    """When the planning scheduler plans (scheduler.py)."""
    retention_days: float | None = None
    """Delete samples older than this many days (hourly); None keeps everything."""


@dataclass(frozen=True)
class DataLayout:
    root: Path

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def broker_dir(self) -> Path:
        return self.root / "mosquitto"

    @property
    def service_dir(self) -> Path:
        return self.root / "service"

    @property
    def shadows_db(self) -> Path:
        return self.root / "shadows.sqlite3"

    @property
    def fleet_db(self) -> Path:
        return self.root / "fleet.sqlite3"

    @property
    def runtime_file(self) -> Path:
        return self.root / "runtime.json"

    @property
    def inputs_dir(self) -> Path:
        return self.root / "inputs"

    @property
    def planning_status(self) -> Path:
        return self.root / "planning.json"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the broker takes it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _service_credentials(layout: DataLayout, authority: CertificateAuthority) -> tuple[Path, Path]:
    layout.service_dir.mkdir(parents=True, exist_ok=True)
    layout.service_dir.chmod(0o700)
    issued = authority.issue_service_certificate()
    certificate, key = layout.service_dir / "service.pem", layout.service_dir / "service.key"
    certificate.write_text(issued.certificate_pem)
    write_private(key, issued.private_key_pem)
    return certificate, key


async def serve(settings: ServeSettings, stop: asyncio.Event) -> None:
    """Run the broker, the shadow service and the fleet data side (store, rules dispatcher,
    page) until ``stop`` is set; print one line once ready."""
    check_loopback(settings.http_host)
    intensity = None
    if settings.carbon_intensity is not None:
        intensity = load_intensity(settings.carbon_intensity)  # a bad file stops serve here
    layout = DataLayout(settings.data_dir)
    # Traversable (for the broker user) but not listable by others.
    layout.root.mkdir(mode=0o711, parents=True, exist_ok=True)
    authority = CertificateAuthority.open(layout.ca_dir)
    certificate, key = _service_credentials(layout, authority)
    local_port = free_port()
    mqtt_port = settings.mqtt_port or free_port(settings.host)
    broker = Broker(
        BrokerSettings(layout.broker_dir, settings.host, mqtt_port, local_port), authority
    )
    with contextlib.ExitStack() as cleanup:
        broker.start()
        cleanup.callback(broker.stop)
        store = ShadowStore(layout.shadows_db)
        cleanup.callback(store.close)
        layout.shadows_db.chmod(0o600)  # households' data: owner only
        cleanup.callback(layout.runtime_file.unlink, missing_ok=True)
        tls = service_tls_context(layout.ca_dir / "ca.pem", certificate, key)
        connection = BrokerConnection(local_port, tls)
        service = ShadowService(store, connection.publish)

        def announce(http_port: int) -> None:
            ports = {"mqtt": mqtt_port, "local_mqtt": local_port, "http": http_port}
            _announce(layout, settings, ports, broker.pid)

        app = build_app(service)
        # The fleet store, the rules dispatcher (service identity: a node certificate would be
        # granted the subscriptions and then silently receive nothing) and the fleet page.
        async with fleet_data(
            layout.fleet_db,
            app,
            local_port,
            tls,
            intensity,
            retention_days=settings.retention_days,
        ) as fleet:
            layout.fleet_db.chmod(0o600)  # households' data: owner only
            scheduler = _plan_scheduler(layout, fleet, settings.schedule)

            def announce_and_plan(http_port: int) -> None:
                announce(http_port)
                scheduler.start(f"http://{settings.http_host}:{http_port}")

            try:
                await _serve_shadows(
                    app,
                    service,
                    connection,
                    watched=(_broker_exit(broker), fleet.task),
                    settings=settings,
                    stop=stop,
                    announce=announce_and_plan,
                )
            finally:
                await scheduler.stop()


def _plan_scheduler(
    layout: DataLayout, fleet: FleetData, settings: ScheduleSettings
) -> PlanScheduler:
    """The planning scheduler, fed the rule events the dispatcher handles; it starts planning
    once the iot-data REST API it writes plans through is up."""
    layout.inputs_dir.mkdir(mode=0o700, exist_ok=True)
    scheduler = PlanScheduler(
        fleet.store,
        InputsFolder(layout.inputs_dir),
        layout.planning_status,
        settings,
        events=lambda: stored_events(fleet.store),  # POST /api/flex-events stores them
    )
    fleet.dispatcher.on_event = scheduler.on_event
    return scheduler


async def _serve_shadows(
    app: web.Application,
    service: ShadowService,
    connection: BrokerConnection,
    *,
    watched: tuple[Coroutine[Any, Any, None] | asyncio.Task[None], ...],
    settings: ServeSettings,
    stop: asyncio.Event,
    announce: Callable[[int], None],
) -> None:
    """The MQTT front, then the HTTP application; ``announce(http_port)`` once both are up.

    Ends with an error as soon as the MQTT front or anything ``watched`` (the broker, the rules
    dispatcher) dies: a supervisor restarts us.
    """
    runner = web.AppRunner(app)
    subscribed = asyncio.Event()
    critical = (
        asyncio.create_task(connection.serve(service, subscribed.set)),
        *(asyncio.ensure_future(item) for item in watched),
    )
    try:
        if not await _wait_for(subscribed, stop, critical):
            return  # asked to stop while starting
        await runner.setup()
        await web.TCPSite(runner, settings.http_host, settings.http_port).start()
        announce(runner.addresses[0][1])
        await _wait_for(stop, stop, critical)
    finally:
        await runner.cleanup()
        for task in critical:
            task.cancel()
        await asyncio.gather(*critical, return_exceptions=True)


async def _broker_exit(broker: Broker) -> None:
    status = await asyncio.to_thread(broker.wait)
    raise BrokerError(f"mosquitto exited unexpectedly (status {status}), see {broker.log_path}")


async def _wait_for(
    event: asyncio.Event, stop: asyncio.Event, critical: tuple[asyncio.Task[None], ...]
) -> bool:
    """Wait until ``event`` or ``stop`` is set (False if it was ``stop``); fail at once with
    its error if a critical task ends first."""
    waiters = {asyncio.create_task(event.wait()), asyncio.create_task(stop.wait())}
    try:
        done, _ = await asyncio.wait({*waiters, *critical}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    for task in critical:
        if task in done:
            task.result()
            raise RuntimeError("the shadow service stopped unexpectedly")
    return event.is_set()


def _announce(
    layout: DataLayout, settings: ServeSettings, ports: dict[str, int], broker_pid: int
) -> None:
    """Say where everything listens: ``DATA/runtime.json`` and one line on stdout."""
    runtime = {
        "pid": os.getpid(),
        "broker_pid": broker_pid,
        "mqtt": {"host": settings.host, "port": ports["mqtt"]},
        "local_mqtt": {"host": "127.0.0.1", "port": ports["local_mqtt"]},
        "http": {"host": settings.http_host, "port": ports["http"]},
        "ca": str(layout.ca_dir / "ca.pem"),
    }
    layout.runtime_file.write_text(json.dumps(runtime, indent=2))
    print(
        f"fractal-aggregator serving: mqtts://{settings.host}:{ports['mqtt']}"
        f" http://{settings.http_host}:{ports['http']} ({layout.runtime_file})",
        flush=True,
    )
