"""A real embedded aggregator (`fractal-aggregator serve`: mosquitto + shadow service) for tests,
and the unmodified AWS clients pointed at it.

    with LocalAggregator.started() as aggregator:       # a subprocess on free loopback ports
        node = aggregator.enroll("home-1")                # certificate, key, CA (via `enroll`)
        with mqtt5_client(aggregator, node) as (client, events):  # MQTT5 over mutual TLS
            shadow = shadow_client_v2(client)             # awsiotsdk IotShadowClientV2
            deltas = open_stream(shadow.create_shadow_delta_updated_stream, request)
        iot_data(aggregator).get_thing_shadow(thingName="home-1")  # boto3 iot-data

Needs loopback sockets for boto3: the ``enable_socket`` marker alone is undone by the Home
Assistant plugin, so request pytest-socket's ``socket_enabled`` fixture (see
tests/aggregator_cloud/local/conftest.py). The data directory is made with
``tempfile.mkdtemp`` and opened to traversal (0711), because mosquitto started as root runs as
the ``mosquitto`` user, which cannot enter pytest's 0700 ``tmp_path``.

awscrt runs its callbacks on its own threads: results are handed over through
``concurrent.futures.Future`` and ``queue.Queue``. Clients are stopped and waited for on exit,
so no CRT connection outlives its test.
"""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awsiot
import boto3
from awscrt import mqtt, mqtt5, mqtt_request_response
from awsiot import iotshadow, mqtt5_client_builder, mqtt_connection_builder

from aggregator_cloud.cli import main as aggregator_cli

TIMEOUT = 15  # seconds to wait for a broker answer before the test fails (never asserted on)
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class NodeCredentials:
    node_id: str
    certificate: Path
    private_key: Path
    ca: Path


class LocalAggregator:
    """`fractal-aggregator serve` as a child process on free loopback ports."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.mqtt_port = 0  # 0: serve picks free ports; a restart keeps the same ones
        self.http_port = 0
        self.log_path = data_dir.parent / "serve.log"
        self._process: subprocess.Popen[str] | None = None

    @classmethod
    @contextlib.contextmanager
    def started(cls) -> Iterator[LocalAggregator]:
        root = Path(tempfile.mkdtemp(prefix="fractal-aggregator-"))
        root.chmod(0o711)
        aggregator = cls(root / "data")
        try:
            aggregator.start()
            yield aggregator
        finally:
            aggregator.stop()
            shutil.rmtree(root, ignore_errors=True)

    def start(self) -> None:
        """Start `serve` and return once it prints that it is serving."""
        with self.log_path.open("a") as log:
            self._process = self._spawn(log)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if "serving" not in line:
            self.stop()
            raise RuntimeError(f"fractal-aggregator serve did not start: {line}{self.log}")
        runtime = json.loads((self.data_dir / "runtime.json").read_text())
        self.mqtt_port = runtime["mqtt"]["port"]
        self.http_port = runtime["http"]["port"]

    def _spawn(self, log: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aggregator_cloud.cli",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--mqtt-port",
                str(self.mqtt_port),
                "--http-port",
                str(self.http_port),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )

    def stop(self) -> int | None:
        """Stop `serve` with SIGTERM as a service manager would; return its exit status."""
        process, self._process = self._process, None
        if process is None:
            return None
        process.terminate()
        try:
            process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        return process.returncode

    def wait(self, timeout: float) -> int:
        """Wait for `serve` to exit by itself; return its exit status."""
        assert self._process is not None
        process, self._process = self._process, None
        process.communicate(timeout=timeout)
        return process.returncode

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def enroll(self, node_id: str) -> NodeCredentials:
        """Enrol a node through the real `enroll` command."""
        out = self.data_dir.parent / "enrolled" / node_id
        status = aggregator_cli(
            ["enroll", node_id, "--data-dir", str(self.data_dir), "--out", str(out)]
        )
        assert status == 0
        return NodeCredentials(
            node_id, out / f"{node_id}.cert.pem", out / f"{node_id}.private.key", out / "ca.pem"
        )

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def iot_data(aggregator: LocalAggregator) -> Any:
    """The unchanged boto3 iot-data client, with dummy credentials."""
    return boto3.client(
        "iot-data",
        endpoint_url=aggregator.http_endpoint,
        region_name="eu-west-2",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


class Mqtt5Events:
    """What an MQTT5 client's lifecycle and publish callbacks reported."""

    def __init__(self) -> None:
        self.connected: Future[mqtt5.LifecycleConnectSuccessData] = Future()
        self.connection_failure: Future[mqtt5.LifecycleConnectFailureData] = Future()
        self.stopped: Future[None] = Future()
        self.received: queue.Queue[mqtt5.PublishPacket] = queue.Queue()

    def on_success(self, data: mqtt5.LifecycleConnectSuccessData) -> None:
        _settle(self.connected, data)

    def on_failure(self, data: mqtt5.LifecycleConnectFailureData) -> None:
        _settle(self.connection_failure, data)

    def on_stopped(self, data: mqtt5.LifecycleStoppedData) -> None:
        _settle(self.stopped, None)

    def on_publish(self, data: mqtt5.PublishReceivedData) -> None:
        self.received.put(data.publish_packet)


def _settle(future: Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


@contextlib.contextmanager
def mqtt5_session(
    aggregator: LocalAggregator, node: NodeCredentials, ca: Path | None = None
) -> Iterator[tuple[mqtt5.Client, Mqtt5Events]]:
    """A started MQTT5 client with mutual TLS (not waiting for the connection), stopped on exit."""
    events = Mqtt5Events()
    client = mqtt5_client_builder.mtls_from_path(
        endpoint="127.0.0.1",
        port=aggregator.mqtt_port,
        cert_filepath=str(node.certificate),
        pri_key_filepath=str(node.private_key),
        ca_filepath=str(ca or node.ca),
        client_id=f"{node.node_id}-{id(events)}",
        on_lifecycle_connection_success=events.on_success,
        on_lifecycle_connection_failure=events.on_failure,
        on_lifecycle_stopped=events.on_stopped,
        on_publish_received=events.on_publish,
        max_reconnect_delay_ms=1000,
    )
    client.start()
    try:
        yield client, events
    finally:
        client.stop()
        events.stopped.result(TIMEOUT)


@contextlib.contextmanager
def mqtt5_client(
    aggregator: LocalAggregator, node: NodeCredentials
) -> Iterator[tuple[mqtt5.Client, Mqtt5Events]]:
    """A connected MQTT5 client."""
    with mqtt5_session(aggregator, node) as (client, events):
        events.connected.result(TIMEOUT)
        yield client, events


def shadow_client_v2(client: mqtt5.Client) -> iotshadow.IotShadowClientV2:
    options = mqtt_request_response.ClientOptions(
        max_request_response_subscriptions=4,
        max_streaming_subscriptions=4,
        operation_timeout_in_seconds=TIMEOUT,
    )
    return iotshadow.IotShadowClientV2(client, options)


@contextlib.contextmanager
def mqtt3_connection(
    aggregator: LocalAggregator, node: NodeCredentials
) -> Iterator[mqtt.Connection]:
    """A connected MQTT 3.1.1 connection (what the V1 ``IotShadowClient`` uses)."""
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint="127.0.0.1",
        port=aggregator.mqtt_port,
        cert_filepath=str(node.certificate),
        pri_key_filepath=str(node.private_key),
        ca_filepath=str(node.ca),
        client_id=f"{node.node_id}-v1-{uuid.uuid4().hex[:8]}",
        clean_session=True,
        keep_alive_secs=30,
    )
    connection.connect().result(TIMEOUT)
    try:
        yield connection
    finally:
        connection.disconnect().result(TIMEOUT)


class Stream:
    """An opened awsiotsdk V2 event stream whose subscription is established."""

    def __init__(self) -> None:
        self.events: queue.Queue[Any] = queue.Queue()
        self.established: Future[None] = Future()
        self.operation: Any = None

    def on_status(self, status: mqtt_request_response.SubscriptionStatusEvent) -> None:
        established = mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED
        if status.type == established:
            _settle(self.established, None)
        elif not self.established.done():
            self.established.set_exception(RuntimeError(f"subscription failed: {status}"))

    def next_event(self) -> Any:
        return self.events.get(timeout=TIMEOUT)


def open_stream(create: Any, request: Any) -> Stream:
    """Open a V2 stream (e.g. ``shadow.create_shadow_delta_updated_stream``) and wait until its
    subscription is established, so no event published afterwards can be missed."""
    stream = Stream()
    options = awsiot.ServiceStreamOptions(
        incoming_event_listener=stream.events.put, subscription_status_listener=stream.on_status
    )
    operation = create(request, options)
    operation.open()
    stream.operation = operation  # keep the native operation alive as long as the stream
    stream.established.result(TIMEOUT)
    return stream


def subscribe(client: mqtt5.Client, topic: str) -> mqtt5.SubackPacket:
    packet = mqtt5.SubscribePacket(
        subscriptions=[mqtt5.Subscription(topic_filter=topic, qos=mqtt5.QoS.AT_LEAST_ONCE)]
    )
    return client.subscribe(packet).result(TIMEOUT)


def publish(client: mqtt5.Client, topic: str, payload: bytes) -> mqtt5.PublishCompletionData:
    packet = mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS.AT_LEAST_ONCE)
    return client.publish(packet).result(TIMEOUT)


def next_message(events: Mqtt5Events) -> tuple[str, Any]:
    """The next message the client received: its topic and decoded JSON payload."""
    packet = events.received.get(timeout=TIMEOUT)
    return packet.topic, json.loads(packet.payload)
