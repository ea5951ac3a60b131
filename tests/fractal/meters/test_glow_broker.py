"""The node's own connection to a Glow CAD's broker, against a real mosquitto."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fractal.meters.broker import (
    BrokerError,
    BrokerProblem,
    BrokerSettings,
    connected,
    discover_devices,
    listen,
)
from fractal.meters.glow import topics

from tests.support import glow_messages as glow
from tests.support.glow_messages import broker_directory, password_file, publish
from tests.support.plain_mosquitto import PlainMosquitto, free_port

USER, PASSWORD = "glow", "s3cret-glow"
pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
def broker(socket_enabled: None) -> Iterator[PlainMosquitto]:
    with PlainMosquitto.started(broker_directory()) as running:
        yield running


@pytest.fixture
def password_broker(socket_enabled: None) -> Iterator[PlainMosquitto]:
    directory = broker_directory()
    with PlainMosquitto.started(directory, password_file(directory, USER, PASSWORD)) as running:
        yield running


async def test_discovery_finds_the_cads_from_their_state_messages(
    broker: PlainMosquitto,
) -> None:
    await publish(
        broker.port,
        (glow.state_topic(), glow.state("2023-01-07T23:24:15Z")),
        (
            glow.state_topic(glow.OTHER_DEVICE_ID),
            glow.state("2023-01-07T23:24:16Z", glow.OTHER_DEVICE_ID),
        ),
        ("glow/BROKEN/STATE", b"{not json"),  # a CAD's garbage is not a CAD
        retain=True,  # delivered as soon as discovery subscribes
    )

    found = await discover_devices(BrokerSettings("127.0.0.1", broker.port), seconds=2.0)

    assert set(found) == {glow.DEVICE_ID, glow.OTHER_DEVICE_ID}
    assert found[glow.DEVICE_ID].hardware == "GLOW-IHD-01-1v4-SMETS2"


async def test_discovery_on_a_quiet_broker_finds_nothing(broker: PlainMosquitto) -> None:
    assert await discover_devices(BrokerSettings("127.0.0.1", broker.port), seconds=0.5) == {}


async def test_credentials_are_checked(password_broker: PlainMosquitto) -> None:
    port = password_broker.port
    with pytest.raises(BrokerError) as refused:
        await discover_devices(BrokerSettings("127.0.0.1", port, USER, "wrong"), seconds=0.1)
    assert refused.value.problem is BrokerProblem.INVALID_AUTH
    with pytest.raises(BrokerError) as anonymous:
        await discover_devices(BrokerSettings("127.0.0.1", port), seconds=0.1)
    assert anonymous.value.problem is BrokerProblem.INVALID_AUTH

    found = await discover_devices(BrokerSettings("127.0.0.1", port, USER, PASSWORD), 0.1)
    assert found == {}


async def test_a_broker_that_is_not_there_cannot_be_connected_to() -> None:
    with pytest.raises(BrokerError) as error:
        await discover_devices(BrokerSettings("127.0.0.1", free_port()), seconds=0.1)
    assert error.value.problem is BrokerProblem.CANNOT_CONNECT
    assert error.value.detail


async def test_tls_needs_a_context() -> None:
    with pytest.raises(ValueError, match="tls_context"):
        async with connected(BrokerSettings("127.0.0.1", 8883, tls=True)):
            pass


async def test_listen_hands_on_messages_and_comes_back_after_a_broker_restart(
    broker: PlainMosquitto,
) -> None:
    received: list[tuple[str, bytes]] = []
    problems: list[BrokerError | None] = []
    settings = BrokerSettings("127.0.0.1", broker.port)
    task = asyncio.create_task(
        listen(
            settings, topics(glow.DEVICE_ID), lambda t, p: received.append((t, p)), problems.append
        )
    )
    try:
        await until(lambda: problems == [None])  # subscribed
        first = (glow.electricity_topic(), glow.electricity("2023-01-07T23:24:14Z"))
        other_cad = (glow.electricity_topic(glow.OTHER_DEVICE_ID), b"{}")
        await publish(broker.port, other_cad, first)
        await until(lambda: received == [first])  # another CAD's topics are not subscribed

        broker.restart()
        await until(lambda: len(problems) >= 3 and problems[-1] is None)
        assert isinstance(problems[1], BrokerError)
        assert problems[1].problem is BrokerProblem.CANNOT_CONNECT
        second = (glow.gas_topic(), glow.gas("2023-01-07T23:30:00Z"))
        await publish(broker.port, second)
        await until(lambda: received == [first, second])
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def until(condition: object, limit: float = 30.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 (a real broker answers in its own time)
            await asyncio.sleep(0.02)
