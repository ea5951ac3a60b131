"""The shadow service: the engine behind AWS IoT's reserved MQTT topics.

Requests arrive on ``$aws/things/{thing}/shadow[/name/{shadow}]/{get,update,delete}``; responses
go to ``.../accepted`` or ``.../rejected``, and accepted updates also to ``update/documents`` and
(when desired differs from reported) ``update/delta``. Updates and deletes made through the REST
front publish the same ``accepted``/``documents``/``delta`` messages, as AWS IoT does; REST errors
are returned over HTTP only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from .documents import JsonObject
from .store import Rejection, ShadowStore, UpdateResult

LOGGER = logging.getLogger(__name__)
RECONNECT_SECONDS = 1.0
OPERATIONS = ("get", "update", "delete")
REQUEST_TOPICS = [f"$aws/things/+/shadow/{operation}" for operation in OPERATIONS] + [
    f"$aws/things/+/shadow/name/+/{operation}" for operation in OPERATIONS
]
_REQUEST = re.compile(
    r"\$aws/things/(?P<thing>[^/]+)/shadow(?:/name/(?P<name>[^/]+))?/(?P<operation>get|update|delete)"
)

Publish = Callable[[str, bytes], Awaitable[None]]


@dataclass(frozen=True)
class ShadowRequest:
    thing: str
    name: str  # "" for the classic shadow
    operation: str

    @property
    def topic(self) -> str:
        named = f"/name/{self.name}" if self.name else ""
        return f"$aws/things/{self.thing}/shadow{named}/{self.operation}"


def parse_request_topic(topic: str) -> ShadowRequest | None:
    match = _REQUEST.fullmatch(topic)
    if match is None:
        return None
    return ShadowRequest(match["thing"], match["name"] or "", match["operation"])


def encode(document: JsonObject) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


class ShadowService:
    """Runs requests against the store and publishes what AWS IoT would publish."""

    def __init__(self, store: ShadowStore, publish: Publish) -> None:
        self.store = store
        self._publish = publish

    async def handle_message(self, topic: str, payload: bytes) -> None:
        """One MQTT request; never raises (a failure becomes a 500 on ``.../rejected``)."""
        request = parse_request_topic(topic)
        if request is None:
            LOGGER.warning("ignoring a message on %s: not a shadow request topic", topic)
            return
        try:
            result = self.run(request, payload)
        except Exception:
            LOGGER.exception("shadow request on %s failed", topic)
            result = Rejection(500, "Internal service failure")
        if isinstance(result, Rejection):
            await self._send(f"{request.topic}/rejected", result.payload(self.store.now()))
        else:
            await self.publish_accepted(request, result)

    def run(self, request: ShadowRequest, payload: bytes) -> JsonObject | UpdateResult | Rejection:
        if request.operation == "get":
            return self.store.get(request.thing, request.name, payload)
        if request.operation == "update":
            return self.store.update(request.thing, request.name, payload)
        return self.store.delete(request.thing, request.name, payload)

    async def publish_accepted(
        self, request: ShadowRequest, result: JsonObject | UpdateResult
    ) -> None:
        if not isinstance(result, UpdateResult):
            await self._send(f"{request.topic}/accepted", result)
            return
        await self._send(f"{request.topic}/accepted", result.accepted)
        if result.delta is not None:
            await self._send(f"{request.topic}/delta", result.delta)
        await self._send(f"{request.topic}/documents", result.documents)

    async def publish(self, topic: str, payload: bytes) -> None:
        await self._publish(topic, payload)

    async def _send(self, topic: str, document: JsonObject) -> None:
        await self._publish(topic, encode(document))


def service_tls_context(ca_path: Path, certificate_path: Path, key_path: Path) -> ssl.SSLContext:
    """Mutual TLS to the broker's loopback listener with the service identity."""
    context = ssl.create_default_context(cafile=str(ca_path))
    context.load_cert_chain(str(certificate_path), str(key_path))
    return context


class BrokerConnection:
    """The service's MQTT connection to the broker's loopback listener, reconnecting if lost."""

    def __init__(self, port: int, tls_context: ssl.SSLContext) -> None:
        self._port = port
        self._tls_context = tls_context
        self._client: aiomqtt.Client | None = None
        self._connected_once = False

    async def publish(self, topic: str, payload: bytes) -> None:
        if self._client is None:
            raise ConnectionError("the shadow service is not connected to the broker")
        await self._client.publish(topic, payload, qos=1)

    async def serve(self, service: ShadowService, subscribed: Callable[[], None]) -> None:
        """Answer shadow requests until cancelled; ``subscribed`` is called once listening.

        A failure to connect the first time is raised; a connection lost later is retried.
        """
        while True:
            try:
                await self._serve_once(service, subscribed)
            except aiomqtt.MqttError as error:
                if not self._connected_once:
                    raise
                LOGGER.warning("lost the broker (%s); reconnecting", error)
                self._client = None
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _serve_once(self, service: ShadowService, subscribed: Callable[[], None]) -> None:
        client = aiomqtt.Client(
            "127.0.0.1",
            self._port,
            identifier="fractal-aggregator-shadow",
            tls_context=self._tls_context,
            protocol=aiomqtt.ProtocolVersion.V5,
        )
        async with client:
            for topic in REQUEST_TOPICS:
                await client.subscribe(topic, qos=1)
            self._client = client
            self._connected_once = True
            subscribed()
            async for message in client.messages:
                payload = message.payload
                data = payload if isinstance(payload, bytes | bytearray) else b""
                await service.handle_message(message.topic.value, bytes(data))
