"""A fleet of simulated homes, each behind the node's real link, in one asyncio process.

Every home is enrolled with the data directory's CA (its certificate and key under
``DATA/simulated/<node>/``, key 0600) and runs one `ShadowLink`: awsiotsdk MQTT5 with mutual
TLS to the broker of the running `serve` (ports from ``DATA/runtime.json``), the durable
telemetry buffer, the snapshot policy and the plan inbox: exactly what a Home Assistant node
runs. The link writes the home's descriptor (tags, devices, envelope) to `reported.node`.
Each sample period (10 s of simulated time) every home's model steps, following the plan its
link has in force; the reading goes into the buffer and to the snapshot policy.

Simulated time may run faster than wall time (`SimClock.speed`) for demos.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from fractal.link.buffer import TelemetryBuffer
from fractal.link.plan_inbox import PlanDecision
from fractal.link.shadow_link import LinkConfig, ShadowLink

from aggregator_cloud.local.ca import CertificateAuthority, write_private
from aggregator_cloud.local.runtime import DataLayout

from .home import HomeModel, HomeSpec
from .homes import descriptor, home_specs

LOGGER = logging.getLogger(__name__)

SAMPLE_PERIOD: Final = timedelta(seconds=10)
MAX_SPEED: Final = 3600.0


class NoAggregator(RuntimeError):
    """The data directory has no running aggregator to connect to."""


class SimClock:
    """Simulated time: starts at `start` and runs `speed` times faster than wall time."""

    def __init__(
        self,
        speed: float = 1.0,
        start: datetime | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < speed <= MAX_SPEED:
            raise ValueError(f"speed must be above 0 and at most {MAX_SPEED:g}, not {speed}")
        self.speed = speed
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(self._monotonic() - self._origin) * self.speed)

    def wall_seconds(self, simulated: timedelta) -> float:
        return max(simulated.total_seconds(), 0.0) / self.speed


@dataclass(frozen=True)
class Runtime:
    """Where the running `serve` listens (``DATA/runtime.json``)."""

    mqtt_host: str
    mqtt_port: int
    http_port: int

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def read_runtime(data_dir: Path) -> Runtime:
    """The running aggregator's ports; `NoAggregator` if none runs on this data directory."""
    path = DataLayout(data_dir).runtime_file
    try:
        runtime = json.loads(path.read_text())
    except FileNotFoundError:
        raise NoAggregator(
            f"no aggregator is running on {data_dir} ({path} is missing): start"
            f" `fractal-aggregator serve --data-dir {data_dir}` first"
        ) from None
    except (OSError, ValueError) as error:
        raise NoAggregator(f"cannot read {path}: {error}") from None
    pid = runtime.get("pid")
    if isinstance(pid, int) and not _alive(pid):
        raise NoAggregator(f"{path} is stale: the aggregator (pid {pid}) is not running")
    return Runtime(runtime["mqtt"]["host"], runtime["mqtt"]["port"], runtime["http"]["port"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SimulatedHome:
    """One home: its device model and the node link that carries its data."""

    def __init__(
        self, spec: HomeSpec, config: LinkConfig, directory: Path, clock: Callable[[], datetime]
    ) -> None:
        self.spec = spec
        self.config = config
        self.directory = directory
        self.model = HomeModel(spec)
        self.buffer = TelemetryBuffer(directory / "telemetry.sqlite3")
        self.link = ShadowLink(config, self.buffer, self._on_plan, clock)
        self.link.report_descriptor(descriptor(spec))

    @property
    def node_id(self) -> str:
        return self.spec.node_id

    def tick(self, now: datetime, seconds: float) -> None:
        """Step the devices, buffer the reading and offer the snapshot to the link."""
        plan = self.link.plan_in_force
        reading = self.model.step(now, seconds, plan)
        seq = self.link.record(reading.sample())
        self.link.report_snapshot(reading.snapshot(self.node_id, seq, plan))

    async def close(self) -> None:
        await self.link.stop()
        self.buffer.close()

    def _on_plan(self, decision: PlanDecision) -> None:
        ack = decision.ack
        LOGGER.info("%s: plan %s %s %s", self.node_id, ack.id, ack.status, ack.reason or "")


@dataclass(frozen=True)
class FleetSettings:
    data_dir: Path
    homes: int = 12
    speed: float = 1.0
    seed: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)
    plan_check_interval_s: float = 5.0


class SimulatedFleet:
    """The homes of `settings`, linked to the aggregator running on its data directory.

    ``async with SimulatedFleet(settings, clock) as fleet: await fleet.run(stop)``
    """

    def __init__(self, settings: FleetSettings, clock: SimClock) -> None:
        self.settings = settings
        self.clock = clock
        self.specs = home_specs(settings.homes, seed=settings.seed, extra_tags=settings.tags)
        self.homes: list[SimulatedHome] = []

    @property
    def directory(self) -> Path:
        return self.settings.data_dir / "simulated"

    async def __aenter__(self) -> SimulatedFleet:
        runtime = read_runtime(self.settings.data_dir)
        authority = CertificateAuthority.open(DataLayout(self.settings.data_dir).ca_dir)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        try:
            for spec in self.specs:
                home = self._build_home(spec, runtime, authority)
                self.homes.append(home)
                await home.link.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _build_home(
        self, spec: HomeSpec, runtime: Runtime, authority: CertificateAuthority
    ) -> SimulatedHome:
        directory = self.directory / spec.node_id
        directory.mkdir(mode=0o700, exist_ok=True)
        issued = authority.issue_node_certificate(spec.node_id)
        (directory / "certificate.pem").write_text(issued.certificate_pem)
        write_private(directory / "private.key", issued.private_key_pem)
        config = LinkConfig(
            node_id=spec.node_id,
            endpoint=runtime.mqtt_host,
            port=runtime.mqtt_port,
            ca_pem=authority.certificate_pem,
            certificate_pem=issued.certificate_pem,
            private_key_pem=issued.private_key_pem,
            min_reconnect_s=0.5,
            max_reconnect_s=10.0,
            plan_check_interval_s=self.settings.plan_check_interval_s,
        )
        return SimulatedHome(spec, config, directory, self.clock.now)

    async def run(self, stop: asyncio.Event) -> None:
        """Step every home each sample period of simulated time until `stop` is set."""
        previous = self.clock.now() - SAMPLE_PERIOD
        while not stop.is_set():
            now = self.clock.now()
            seconds = (now - previous).total_seconds()
            if seconds > 0:
                for home in self.homes:
                    home.tick(now, seconds)
                previous = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.clock.wall_seconds(SAMPLE_PERIOD))

    async def close(self) -> None:
        homes, self.homes = self.homes, []
        for home in homes:
            await home.close()
