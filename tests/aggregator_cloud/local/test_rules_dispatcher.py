"""The local rules dispatcher: topics to handlers, bad messages counted, broker restarts survived.

The MQTT tests use a real mosquitto (plain, loopback) and a real aiomqtt publisher sending
with QoS 1, as a node's link does; the store is a real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from aggregator_cloud.handlers import HandlerResult
from aggregator_cloud.local.rules import RulesDispatcher
from aggregator_cloud.store import SqliteStore
from tests.support.fleet_documents import (
    ack,
    batch,
    descriptor,
    documents_message,
    plan,
    reading,
    snapshot,
)
from tests.support.plain_mosquitto import PlainMosquitto
from tests.support.sqlite_faults import FAULT, fail_samples_of

TELEMETRY = "$aws/rules/fractal_telemetry/{}"
CLASSIC = "$aws/things/{}/shadow/update/documents"
PLAN = "$aws/things/{}/shadow/name/plan/update/documents"
HANG_GUARD_SECONDS = 60  # turns a lost message into a failure instead of a hang; not a timing test


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "fleet.sqlite") as opened:
        yield opened


def encoded(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def telemetry(node: str, seq: int, size: int = 5) -> bytes:
    """Batch `seq` of `node`: samples size*(seq-1)+1 .. size*seq."""
    first = size * (seq - 1) + 1
    return encoded(batch(node, seq, [reading(s) for s in range(first, first + size)]))


# --- dispatch: one message, no broker -----------------------------------------------------


def test_each_topic_reaches_its_handler(store: SqliteStore) -> None:
    dispatcher = RulesDispatcher(store, port=1)
    classic = documents_message(
        reported={"node": descriptor("n1", "Mill"), "telemetry": snapshot("n1", 3)}
    )
    plan_message = documents_message(
        desired={"plan": plan("n1", "p1")}, reported={"plan": ack("p1", "accepted", 5)}
    )

    results = [
        dispatcher.dispatch(TELEMETRY.format("n1"), telemetry("n1", 1)),
        dispatcher.dispatch(CLASSIC.format("n1"), encoded(classic)),
        dispatcher.dispatch(PLAN.format("n1"), encoded(plan_message)),
    ]

    assert [(r.ok, r.stored) for r in results if r is not None] == [(True, 5), (True, 2), (True, 2)]
    record = store.node("n1")
    assert record is not None
    assert (record.name, record.plan.status) == ("Mill", "accepted")
    assert store.sample_count("n1") == 5
    assert dispatcher.accepted == {"fractal_telemetry": 1, "fractal_shadow": 1, "fractal_plan": 1}


def test_other_topics_are_not_ours(store: SqliteStore) -> None:
    dispatcher = RulesDispatcher(store, port=1)

    assert dispatcher.dispatch("$aws/things/n1/shadow/update/accepted", b"{}") is None
    assert dispatcher.dispatch("$aws/things/n1/shadow/name/other/update/documents", b"{}") is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object but list"),
        (b'{"schema": "fractal.telemetry_batch.v1"}', "node: Field required"),
    ],
)
def test_garbage_is_refused_counted_and_the_next_batch_kept(
    store: SqliteStore, payload: bytes, reason: str
) -> None:
    dispatcher = RulesDispatcher(store, port=1)

    refused = dispatcher.dispatch(TELEMETRY.format("n1"), payload)
    kept = dispatcher.dispatch(TELEMETRY.format("n1"), telemetry("n1", 1))

    assert refused is not None
    assert kept is not None
    assert any(reason in problem for problem in refused.problems), refused.problems
    assert kept.ok
    assert dispatcher.refused == {"n1": 1}
    assert store.sample_count("n1") == 5


def test_refusals_are_logged_once_per_node_until_it_recovers(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher = RulesDispatcher(store, port=1)
    caplog.set_level(logging.INFO, logger="aggregator_cloud.local.rules")

    for _ in range(3):
        dispatcher.dispatch(TELEMETRY.format("n1"), b"garbage")
    dispatcher.dispatch(TELEMETRY.format("n2"), b"garbage")
    dispatcher.dispatch(TELEMETRY.format("n1"), telemetry("n1", 1))
    dispatcher.dispatch(TELEMETRY.format("n1"), b"garbage")

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    recovered = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert [message.split(" (")[0] for message in warnings] == [
        "fractal_telemetry: refused a message from n1",
        "fractal_telemetry: refused a message from n2",
        "fractal_telemetry: refused a message from n1",
    ]
    assert "not JSON" in warnings[0]
    assert recovered == ["fractal_telemetry: n1 sends valid messages again"]
    assert dispatcher.refused == {"n1": 4, "n2": 1}


def test_a_storage_fault_is_logged_and_does_not_stop_the_dispatcher(tmp_path: Path) -> None:
    broken = SqliteStore(tmp_path / "closed.sqlite")
    broken.close()
    dispatcher = RulesDispatcher(broken, port=1)

    result = dispatcher.dispatch(TELEMETRY.format("n1"), telemetry("n1", 1))

    assert result is None
    assert dispatcher.errors == 1


# --- groups: many messages, one commit ---------------------------------------------------


def burst(nodes: int, batches: int) -> list[tuple[str, bytes]]:
    """Batches 1..`batches` of nodes n1..n`nodes`, interleaved as they arrive from a fleet."""
    return [
        (TELEMETRY.format(f"n{node}"), telemetry(f"n{node}", seq))
        for seq in range(1, batches + 1)
        for node in range(1, nodes + 1)
    ]


def test_a_group_is_one_commit_and_every_message_gets_its_own_result(store: SqliteStore) -> None:
    results: list[HandlerResult] = []
    dispatcher = RulesDispatcher(store, port=1, on_result=results.append)
    messages = [
        *burst(nodes=4, batches=10),
        (TELEMETRY.format("n1"), telemetry("n1", 3)),  # a replay inside the same group
        (TELEMETRY.format("n2"), b"{not json"),
        (
            CLASSIC.format("n1"),
            encoded(documents_message(reported={"telemetry": snapshot("n1", 3)})),
        ),
    ]

    returned = dispatcher.dispatch_group(messages)

    assert store.commits == 1
    assert returned == results
    assert [(r.stored, r.duplicates) for r in results[:40]] == [(5, 0)] * 40
    assert (results[40].stored, results[40].duplicates) == (0, 5)
    assert "not JSON" in results[41].problems[0]
    assert results[42].ok
    assert [store.sample_count(f"n{node}") for node in range(1, 5)] == [50] * 4
    assert dispatcher.accepted == {"fractal_telemetry": 41, "fractal_shadow": 1}
    assert dispatcher.refused == {"n2": 1}


def test_a_message_the_store_fails_on_is_undone_alone_and_the_group_committed(
    tmp_path: Path, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    fail_samples_of(tmp_path / "fleet.sqlite", "n2", rollback=False)
    dispatcher = RulesDispatcher(store, port=1)

    results = dispatcher.dispatch_group(burst(nodes=3, batches=2))

    assert [r is not None and r.stored for r in results] == [5, False, 5, 5, False, 5]
    assert (store.commits, dispatcher.errors, dispatcher.rollbacks) == (1, 2, 0)
    assert [record.node for record in store.nodes()] == ["n1", "n3"]  # n2 not even "seen"
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failures] == [
        "fractal_telemetry: failed to handle a message on $aws/rules/fractal_telemetry/n2"
    ] * 2
    assert all(FAULT in str(r.exc_info[1]) for r in failures if r.exc_info)


def test_a_group_sqlite_rolls_back_is_said_once_and_redone_a_message_at_a_time(
    tmp_path: Path, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    fail_samples_of(tmp_path / "fleet.sqlite", "n2", rollback=True)
    results: list[HandlerResult] = []
    dispatcher = RulesDispatcher(store, port=1, on_result=results.append)
    caplog.set_level(logging.WARNING, logger="aggregator_cloud.local.rules")

    dispatcher.dispatch_group(burst(nodes=3, batches=2))
    after = dispatcher.dispatch_group(burst(nodes=1, batches=3))  # the stream goes on

    # Only what was really stored is reported: no result from the rolled-back attempt.
    assert [(r.node, r.stored, r.duplicates) for r in results] == [
        ("n1", 5, 0),
        ("n3", 5, 0),
        ("n1", 5, 0),
        ("n3", 5, 0),
        ("n1", 0, 5),
        ("n1", 0, 5),
        ("n1", 5, 0),
    ]
    assert [r is not None and r.stored for r in after] == [0, 0, 5]
    assert (dispatcher.rollbacks, dispatcher.errors) == (1, 2)
    assert store.commits == 4 + 1
    assert [store.sample_count(node) for node in ("n1", "n2", "n3")] == [15, 0, 10]
    rolled_back = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(rolled_back) == 1
    assert rolled_back[0].startswith("rules: a group of 6 messages was rolled back")


# --- run: through a real broker -----------------------------------------------------------


class Running:
    """A dispatcher task with a queue of its results and an event per (re)subscription."""

    def __init__(self, store: SqliteStore, port: int) -> None:
        self.results: asyncio.Queue[HandlerResult] = asyncio.Queue()
        self.subscriptions: asyncio.Queue[int] = asyncio.Queue()
        self.dispatcher = RulesDispatcher(
            store, port, identifier="test-rules", on_result=self.results.put_nowait
        )
        self.task = asyncio.create_task(
            self.dispatcher.run(lambda: self.subscriptions.put_nowait(1))
        )

    async def subscribed(self) -> None:
        waiter = asyncio.ensure_future(self.subscriptions.get())
        done, _ = await asyncio.wait(
            {waiter, self.task}, timeout=HANG_GUARD_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            if self.task in done:
                self.task.result()
            pytest.fail("the dispatcher did not (re)subscribe")

    async def handled(self, count: int) -> list[HandlerResult]:
        async with asyncio.timeout(HANG_GUARD_SECONDS):
            return [await self.results.get() for _ in range(count)]

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@contextlib.asynccontextmanager
async def running(store: SqliteStore, port: int) -> AsyncIterator[Running]:
    dispatcher = Running(store, port)
    try:
        await dispatcher.subscribed()
        yield dispatcher
    finally:
        await dispatcher.stop()


async def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    """A node's link: one connection, QoS 1, each publish acknowledged by the broker."""
    async with aiomqtt.Client("127.0.0.1", port, identifier="test-node") as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


async def test_a_broker_restart_loses_nothing_the_node_resends(
    tmp_path: Path, store: SqliteStore, socket_enabled: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aggregator_cloud.local.rules")
    node_topic = TELEMETRY.format("n1")
    with PlainMosquitto.started(tmp_path) as broker:
        async with running(store, broker.port) as dispatcher:
            await publish(broker.port, [(node_topic, telemetry("n1", seq)) for seq in (1, 2, 3)])
            before = await dispatcher.handled(3)

            broker.restart()
            await dispatcher.subscribed()
            # The node cannot know what reached the aggregator: it replays its buffer.
            replay = [(node_topic, telemetry("n1", seq)) for seq in range(1, 7)]
            await publish(broker.port, replay)
            after = await dispatcher.handled(6)

    assert [result.stored for result in before] == [5, 5, 5]
    assert [(result.stored, result.duplicates) for result in after] == [(0, 5)] * 3 + [(5, 0)] * 3
    assert list(store.samples("n1")["seq"]) == list(range(1, 31))
    assert dispatcher.dispatcher.connections == 2
    outage = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len([message for message in outage if message.startswith("rules: no broker")]) == 1
    assert "rules: reconnected to the broker" in outage


async def test_messages_sent_while_the_dispatcher_is_away_wait_for_it(
    tmp_path: Path, store: SqliteStore, socket_enabled: None
) -> None:
    node_topic = TELEMETRY.format("n1")
    with PlainMosquitto.started(tmp_path) as broker:
        async with running(store, broker.port) as first:
            await publish(broker.port, [(node_topic, telemetry("n1", 1))])
            await first.handled(1)

        await publish(broker.port, [(node_topic, telemetry("n1", seq)) for seq in (2, 3)])

        async with running(store, broker.port) as second:
            results = await second.handled(2)

    assert [result.stored for result in results] == [5, 5]
    assert list(store.samples("n1")["seq"]) == list(range(1, 16))


async def test_garbage_through_the_broker_does_not_stop_the_flow(
    tmp_path: Path, store: SqliteStore, socket_enabled: None
) -> None:
    with PlainMosquitto.started(tmp_path) as broker:
        async with running(store, broker.port) as dispatcher:
            await publish(
                broker.port,
                [
                    (TELEMETRY.format("n1"), telemetry("n1", 1)),
                    (TELEMETRY.format("n1"), b"\x00garbage"),
                    (CLASSIC.format("n1"), b'{"current": 5}'),
                    (TELEMETRY.format("n2"), telemetry("n1", 2)),
                    (TELEMETRY.format("n1"), telemetry("n1", 2)),
                ],
            )
            results = await dispatcher.handled(5)

    assert [result.ok for result in results] == [True, False, False, False, True]
    assert "'n1'" in results[3].problems[0]
    assert store.sample_count("n1") == 10
    assert store.sample_count("n2") == 0


async def test_a_burst_through_the_broker_is_stored_exactly_once(
    tmp_path: Path, store: SqliteStore, socket_enabled: None
) -> None:
    # Sent while the dispatcher is away, the burst arrives as fast as the broker can send it.
    messages = burst(nodes=5, batches=40)
    messages.insert(100, (TELEMETRY.format("n3"), b"garbage"))
    replay = burst(nodes=5, batches=10)
    with PlainMosquitto.started(tmp_path) as broker:
        async with running(store, broker.port) as first:
            pass
        await publish(broker.port, messages + replay)

        async with running(store, broker.port) as dispatcher:
            results = await dispatcher.handled(len(messages) + len(replay))

    assert first.dispatcher.connections == 1
    assert [r.ok for r in results].count(False) == 1
    assert sum(r.stored for r in results) == 5 * 40 * 5
    assert sum(r.duplicates for r in results) == 5 * 10 * 5
    for node in range(1, 6):
        assert list(store.samples(f"n{node}")["seq"]) == list(range(1, 201))
    assert dispatcher.dispatcher.errors == 0
    # mosquitto resumes the session with a burst (up to 20 unacknowledged messages in flight),
    # so messages are already waiting when a group starts: they share its commit.
    assert store.commits < len(results)
