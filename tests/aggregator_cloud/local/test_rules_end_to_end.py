"""A node's telemetry and shadow updates reach the fleet page through the real local parts:
the generated mosquitto (mutual TLS, ACL), our shadow service, and `fleet_data` (the store, the
rules dispatcher on the broker's loopback listener with the service identity, the page)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from aggregator_cloud.handlers import HandlerResult
from aggregator_cloud.local.broker import Broker, BrokerSettings
from aggregator_cloud.local.ca import CertificateAuthority, IssuedCertificate, write_private
from aggregator_cloud.local.fleet_data import fleet_data
from aggregator_cloud.local.runtime import free_port
from aggregator_cloud.local.shadow.rest import build_app
from aggregator_cloud.local.shadow.service import (
    BrokerConnection,
    ShadowService,
    service_tls_context,
)
from aggregator_cloud.local.shadow.store import ShadowStore
from tests.support.fleet_documents import ack, batch, descriptor, reading, snapshot

NODE = "home-1"
HANG_GUARD_SECONDS = 60  # turns a lost message into a failure instead of a hang


def credentials(directory: Path, name: str, issued: IssuedCertificate) -> tuple[Path, Path]:
    certificate, key = directory / f"{name}.pem", directory / f"{name}.key"
    certificate.write_text(issued.certificate_pem)
    write_private(key, issued.private_key_pem)
    return certificate, key


class Site:
    """CA, broker, shadow service and dispatcher, as `serve` runs them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.authority = CertificateAuthority.open(root / "ca")
        self.ca = root / "ca.pem"
        self.ca.write_text(self.authority.certificate_pem)
        self.local_port, self.mqtt_port = free_port(), free_port()
        self.broker = Broker(
            BrokerSettings(root / "mosquitto", "127.0.0.1", self.mqtt_port, self.local_port),
            self.authority,
        )
        service = credentials(root, "service", self.authority.issue_service_certificate())
        self.service_tls = service_tls_context(self.ca, *service)

    def node_tls(self, node: str) -> ssl.SSLContext:
        certificate, key = credentials(self.root, node, self.authority.issue_node_certificate(node))
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(certificate), str(key))
        return context


@pytest.fixture
def site(socket_enabled: None) -> Iterator[Site]:
    # mosquitto started as root runs as the mosquitto user: it must be able to reach its files.
    root = Path(tempfile.mkdtemp(prefix="fractal-rules-"))
    root.chmod(0o711)
    built = Site(root)
    built.broker.start()
    try:
        yield built
    finally:
        built.broker.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def background(task: asyncio.Task[None]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_node_reports_reach_the_fleet_page(
    site: Site, tmp_path: Path, socket_enabled: None
) -> None:
    shadows = ShadowStore(tmp_path / "shadows.sqlite3")
    connection = BrokerConnection(site.local_port, site.service_tls)
    service = ShadowService(shadows, connection.publish)
    app = build_app(service)
    shadow_ready = asyncio.Event()
    shadow_task = asyncio.create_task(connection.serve(service, shadow_ready.set))
    async with (
        background(shadow_task),
        fleet_data(tmp_path / "fleet.sqlite3", app, site.local_port, site.service_tls) as fleet,
    ):
        results: asyncio.Queue[HandlerResult] = asyncio.Queue()
        fleet.dispatcher.on_result = results.put_nowait
        async with asyncio.timeout(HANG_GUARD_SECONDS):
            await shadow_ready.wait()
        async with aiomqtt.Client(
            "127.0.0.1", site.mqtt_port, identifier=NODE, tls_context=site.node_tls(NODE)
        ) as node:
            samples = [reading(seq, grid_w=4321.0) for seq in (1, 2, 3)]
            await node.publish(
                f"$aws/rules/fractal_telemetry/{NODE}",
                json.dumps(batch(NODE, 1, samples)),
                qos=1,
            )
            reported = {"node": descriptor(NODE, "Mill"), "telemetry": snapshot(NODE, 2)}
            await node.publish(
                f"$aws/things/{NODE}/shadow/update",
                json.dumps({"state": {"reported": reported}}),
                qos=1,
            )
            await node.publish(
                f"$aws/things/{NODE}/shadow/name/plan/update",
                json.dumps({"state": {"reported": {"plan": ack("p1", "accepted", 5)}}}),
                qos=1,
            )
            async with asyncio.timeout(HANG_GUARD_SECONDS):
                handled = [await results.get() for _ in range(3)]
        async with TestClient(TestServer(app)) as browser:
            page = await (await browser.get("/")).text()
        record = fleet.store.node(NODE)
        stored = fleet.store.sample_count(NODE)
    shadows.close()

    assert sorted((result.ok, result.stored) for result in handled) == [
        (True, 1),
        (True, 2),
        (True, 3),
    ]
    assert stored == 3
    assert record is not None
    assert record.name == "Mill"
    assert record.plan.ack_status == "accepted"
    assert record.last_seen is not None
    assert "Mill" in page
    assert "4,321 W" in page  # the last sample (seq 3) is newer than the snapshot (seq 2)
    assert "accepted" in page


async def test_a_dispatcher_that_cannot_trust_the_broker_fails_at_start(
    site: Site, tmp_path: Path, socket_enabled: None
) -> None:
    system_roots_only = ssl.create_default_context()  # not our CA, no client certificate
    app = web.Application()

    with pytest.raises(aiomqtt.MqttError):
        async with fleet_data(tmp_path / "fleet.sqlite3", app, site.local_port, system_roots_only):
            pass
