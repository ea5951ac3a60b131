"""A Glow CAD's own MQTT broker, when Home Assistant's MQTT integration does not carry it.

`discover_devices` listens a few seconds for the CADs' STATE messages; `listen` runs until
cancelled, reconnecting with back-off, and hands each message on. Connection problems are
`BrokerError`s that say whether the broker is unreachable or refused the credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import aiomqtt

from .glow import STATE_SUBSCRIPTION, GlowDevice, GlowMessageError, parse_message

_LOGGER = logging.getLogger(__name__)

DEFAULT_MQTT_PORT: Final = 1883
CONNECT_TIMEOUT_SECONDS: Final = 10.0
RECONNECT_SECONDS: Final = (1.0, 5.0, 30.0, 60.0)
# CONNACK codes that mean "wrong credentials", not "broker unavailable": MQTT 3.1.1's 4 and 5,
# which paho 2 reports as the MQTT 5 reason codes 134 and 135.
_REFUSED_CREDENTIALS: Final = frozenset({4, 5, 134, 135})


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int = DEFAULT_MQTT_PORT
    username: str | None = None
    password: str | None = None
    tls: bool = False


class BrokerProblem(StrEnum):
    CANNOT_CONNECT = "cannot_connect"
    INVALID_AUTH = "invalid_auth"


class BrokerError(Exception):
    def __init__(self, problem: BrokerProblem, detail: str) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem
        self.detail = detail


@contextlib.asynccontextmanager
async def connected(
    settings: BrokerSettings, tls_context: ssl.SSLContext | None = None
) -> AsyncIterator[aiomqtt.Client]:
    """A connected client; `tls_context` is required when `settings.tls` (made by the caller,
    as loading CA certificates is blocking work)."""
    if settings.tls and tls_context is None:
        raise ValueError("a TLS broker needs a tls_context")
    client = aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username or None,
        password=settings.password or None,
        identifier=f"fractal-node-{uuid.uuid4().hex[:12]}",
        tls_context=tls_context if settings.tls else None,
        protocol=aiomqtt.ProtocolVersion.V311,
        timeout=CONNECT_TIMEOUT_SECONDS,
    )
    entering = asyncio.ensure_future(client.__aenter__())
    try:
        await asyncio.shield(entering)
    except asyncio.CancelledError:
        await _finish_then_leave(client, entering)
        raise
    except aiomqtt.MqttCodeError as error:
        problem = (
            BrokerProblem.INVALID_AUTH
            if _code(error) in _REFUSED_CREDENTIALS
            else BrokerProblem.CANNOT_CONNECT
        )
        raise BrokerError(problem, str(error)) from error
    except (aiomqtt.MqttError, OSError) as error:
        detail = str(error) or type(error).__name__
        raise BrokerError(BrokerProblem.CANNOT_CONNECT, detail) from error
    try:
        yield client
    finally:
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)
        _retrieve_disconnection(client)


async def _finish_then_leave(client: aiomqtt.Client, entering: asyncio.Future[Any]) -> None:
    """Cancelled while connecting (e.g. the node unloads): aiomqtt must not be cancelled
    mid-connect, or paho's later callbacks read the cancelled future and fail in the event
    loop. The attempt ends first (within the connect timeout), then the client leaves."""
    try:
        await entering
    except (aiomqtt.MqttError, OSError):
        return
    with contextlib.suppress(aiomqtt.MqttError):
        await client.__aexit__(None, None, None)
    _retrieve_disconnection(client)


def _retrieve_disconnection(client: aiomqtt.Client) -> None:
    """aiomqtt keeps why the connection dropped in a future that its own exit does not read
    when the drop came first (e.g. a keep-alive timeout); read here, so asyncio does not log
    "Future exception was never retrieved" for a drop already handled."""
    disconnected = getattr(client, "_disconnected", None)
    if (
        isinstance(disconnected, asyncio.Future)
        and disconnected.done()
        and not disconnected.cancelled()
    ):
        disconnected.exception()


def _code(error: aiomqtt.MqttCodeError) -> int | None:
    rc = error.rc
    return rc if isinstance(rc, int) else getattr(rc, "value", None)


async def discover_devices(
    settings: BrokerSettings, seconds: float, tls_context: ssl.SSLContext | None = None
) -> dict[str, GlowDevice]:
    """The CADs whose STATE messages arrive within `seconds`, by device id."""
    found: dict[str, GlowDevice] = {}
    async with connected(settings, tls_context) as client:
        await client.subscribe(STATE_SUBSCRIPTION)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                async for message in client.messages:
                    device = state_device(message.topic.value, _payload(message))
                    if device is not None:
                        found[device.device_id] = device
    return found


def state_device(topic: str, payload: bytes) -> GlowDevice | None:
    """The CAD a STATE message describes; None for other or unreadable messages."""
    try:
        parsed = parse_message(topic, payload)
    except GlowMessageError:
        return None
    return parsed.device if parsed is not None else None


async def listen(
    settings: BrokerSettings,
    subscription: str,
    on_message: Callable[[str, bytes], None],
    on_problem: Callable[[BrokerError | None], None],
    tls_context: ssl.SSLContext | None = None,
) -> None:
    """Hand on every message of `subscription` until cancelled, reconnecting with back-off.
    `on_problem` hears each connection problem and None once connected again."""
    failures = 0
    while True:
        try:
            async with connected(settings, tls_context) as client:
                await client.subscribe(subscription)
                failures = 0
                on_problem(None)
                async for message in client.messages:
                    on_message(message.topic.value, _payload(message))
            error = BrokerError(BrokerProblem.CANNOT_CONNECT, "the broker closed the connection")
        except BrokerError as refused:
            error = refused
        except aiomqtt.MqttError as lost:
            error = BrokerError(BrokerProblem.CANNOT_CONNECT, str(lost))
        failures += 1
        wait = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS)) - 1]
        # Once per outage, not every few seconds while the broker is away.
        log = _LOGGER.warning if failures == 1 else _LOGGER.debug
        log("MQTT broker %s:%s: %s; retrying in %.0f s", settings.host, settings.port, error, wait)
        on_problem(error)
        await asyncio.sleep(wait)


def _payload(message: aiomqtt.Message) -> bytes:
    payload = message.payload  # received messages carry bytes
    return bytes(payload) if isinstance(payload, bytes | bytearray) else b""
