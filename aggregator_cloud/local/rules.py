"""The local rules dispatcher: what the AWS IoT topic rules do, for the embedded aggregator.

It subscribes on the broker's loopback listener to the topics the AWS rules select from,
builds the same event each rule would (the message plus `thing_name` from the topic) and
calls the same handler functions. Bad messages are refused by the handlers with reasons;
the dispatcher counts them and logs the first one from each node (and when the node recovers),
and never stops for them. A lost broker is reconnected to.

Delivery: QoS 1 with a persistent session (fixed client id, clean_session off), so messages
sent while the dispatcher is reconnecting wait in mosquitto. paho acknowledges each message as
it hands it over, before it is stored: the nodes' replay and the (node, seq) dedupe, not the
PUBACK, are what make a message that dies with the process come again.

Group commit: the commit (an fsync) bounds the ingest rate, so the messages that have arrived
(up to GROUP_MESSAGES, collected for at most GROUP_SECONDS) are handled in one transaction,
each in a savepoint of its own; results are reported once the group is committed. Idle, a
group is one message and waits for nothing. Handlers are synchronous and run in order, which
keeps each node's replay in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiomqtt

from aggregator_cloud.handlers import (
    THING_NAME,
    HandlerResult,
    handle_plan_documents,
    handle_shadow_documents,
    handle_telemetry_batch,
)
from aggregator_cloud.store import FleetStore, GroupedFleetStore, TransactionLost

LOGGER = logging.getLogger(__name__)

CLIENT_ID: Final = "fractal-aggregator-rules"
RECONNECT_SECONDS: Final = (0.5, 1.0, 2.0, 5.0)
"""Waits between reconnection attempts; the last one repeats."""
GROUP_MESSAGES: Final = 200
"""Most messages per transaction: bounds how long a group holds the event loop."""
GROUP_SECONDS: Final = 0.05
"""Longest a group keeps collecting after its first message, so results are not held back."""


Handler = Callable[[Mapping[str, Any], FleetStore], HandlerResult]
EventListener = Callable[[Mapping[str, Any], HandlerResult], None]


@dataclass(frozen=True)
class Rule:
    """One AWS IoT topic rule: the topic filter it selects from and the handler it calls."""

    name: str
    topic: str
    thing_level: int
    """Index (from 0) of the topic level holding the thing name."""
    handler: Handler

    def matches(self, topic: str) -> bool:
        return aiomqtt.Topic(topic).matches(self.topic)


RULES: Final = (
    Rule("fractal_telemetry", "$aws/rules/fractal_telemetry/+", 3, handle_telemetry_batch),
    Rule("fractal_shadow", "$aws/things/+/shadow/update/documents", 2, handle_shadow_documents),
    Rule(
        "fractal_plan",
        "$aws/things/+/shadow/name/plan/update/documents",
        2,
        handle_plan_documents,
    ),
)


def rule_event(rule: Rule, topic: str, payload: bytes) -> dict[str, Any] | str:
    """The event the IoT rule `SELECT *, topic(...) AS thing_name` makes, or why there is
    none (the payload is not a JSON object: AWS would not run `SELECT *` on it either)."""
    try:
        message = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"the payload is not JSON: {error}"
    if not isinstance(message, dict):
        return f"the payload is not a JSON object but {type(message).__name__}"
    return {**message, THING_NAME: topic.split("/")[rule.thing_level]}


class RulesDispatcher:
    """Feeds broker messages to the handlers; counts and logs what they refuse."""

    def __init__(
        self,
        store: GroupedFleetStore,
        port: int,
        *,
        host: str = "127.0.0.1",
        tls_context: ssl.SSLContext | None = None,
        identifier: str = CLIENT_ID,
        on_result: Callable[[HandlerResult], None] | None = None,
        on_event: EventListener | None = None,
    ) -> None:
        """`on_result` is called with every handler's result; `on_event` with each rule event
        and its result, once stored (the scheduler re-plans nodes from them)."""
        self._store = store
        self._host = host
        self._port = port
        self._tls_context = tls_context
        self._identifier = identifier
        self.on_result = on_result
        """Called with every handler's result; may be set after construction."""
        self.on_event = on_event
        """Called with every handled event and its result; may be set after construction."""
        self.accepted: Counter[str] = Counter()
        """Messages handled without a problem, per rule."""
        self.refused: Counter[str] = Counter()
        """Messages refused (wholly or in part), per node (or topic, if no node)."""
        self.connections = 0
        self.errors = 0
        """Messages a handler failed on (a bug or a storage fault): logged with the trace."""
        self.rollbacks = 0
        """Groups that could not be committed and were redone one message at a time."""
        self._failing: set[tuple[str, str]] = set()

    def dispatch(self, topic: str, payload: bytes) -> HandlerResult | None:
        """Handle one message as its rule would; None if no rule selects the topic (or its
        handler failed: counted in `errors`)."""
        return self.dispatch_group([(topic, payload)])[0]

    def dispatch_group(self, messages: Sequence[tuple[str, bytes]]) -> list[HandlerResult | None]:
        """Handle (topic, payload) messages in order, in one transaction; each message's
        writes are all or nothing. If the group cannot be committed it is rolled back, said
        once, and its messages are handled again one transaction each, so a storage fault
        costs only the messages it hits."""
        try:
            with self._store.atomic():
                outcomes = [
                    self._handle(topic, payload, grouped=True) for topic, payload in messages
                ]
        except Exception as error:
            outcomes = self._redo(messages, error)
        return [self._report(outcome) for outcome in outcomes]

    def _redo(self, messages: Sequence[tuple[str, bytes]], error: Exception) -> list[_Outcome]:
        """The group was rolled back: nothing of it is stored, so handle each message again
        in a transaction of its own."""
        if len(messages) == 1:
            topic = messages[0][0]
            return [_Outcome(_rule_of(topic), topic, error=error)]
        self.rollbacks += 1
        LOGGER.warning(
            "rules: a group of %d messages was rolled back (%s); storing them one by one",
            len(messages),
            error,
        )
        return [self._handle(topic, payload, grouped=False) for topic, payload in messages]

    def _handle(self, topic: str, payload: bytes, *, grouped: bool) -> _Outcome:
        rule = _rule_of(topic)
        if rule is None:
            return _Outcome(rule, topic)
        event = rule_event(rule, topic, payload)
        if isinstance(event, str):
            node = topic.split("/")[rule.thing_level]
            return _Outcome(rule, topic, HandlerResult(node, problems=(event,)))
        try:
            with self._store.atomic():
                return _Outcome(rule, topic, rule.handler(event, self._store), event=event)
        except TransactionLost as error:
            if grouped:
                raise  # the whole group is gone: the caller redoes it
            return _Outcome(rule, topic, error=error)
        except Exception as error:
            # The handlers refuse bad input themselves: this is a bug or a storage fault.
            # Its writes are undone; the other messages go on.
            return _Outcome(rule, topic, error=error)

    def _report(self, outcome: _Outcome) -> HandlerResult | None:
        rule, result = outcome.rule, outcome.result
        if rule is None:
            return None
        if result is None:
            self.errors += 1
            LOGGER.error(
                "%s: failed to handle a message on %s",
                rule.name,
                outcome.topic,
                exc_info=outcome.error,
            )
            return None
        self._account(rule, outcome.topic, result)
        if self.on_result is not None:
            self.on_result(result)
        if self.on_event is not None and outcome.event is not None:
            self.on_event(outcome.event, result)
        return result

    def _account(self, rule: Rule, topic: str, result: HandlerResult) -> None:
        source = result.node or topic
        key = (rule.name, source)
        if result.ok:
            self.accepted[rule.name] += 1
            if key in self._failing:
                self._failing.discard(key)
                LOGGER.info("%s: %s sends valid messages again", rule.name, source)
            return
        self.refused[source] += 1
        if key in self._failing:
            LOGGER.debug("%s: refused from %s: %s", rule.name, source, "; ".join(result.problems))
            return
        self._failing.add(key)
        LOGGER.warning(
            "%s: refused a message from %s (further ones are counted, not logged, until it "
            "sends a valid one): %s",
            rule.name,
            source,
            "; ".join(result.problems),
        )

    async def run(self, subscribed: Callable[[], None] | None = None) -> None:
        """Dispatch until cancelled, reconnecting whenever the broker goes away.

        `subscribed` is called after each (re)subscription. A failure to connect the very
        first time is raised, so a wrong port or certificate shows at start-up."""
        failures = 0
        while True:
            connections = self.connections
            try:
                await self._run_connected(subscribed)
            except aiomqtt.MqttError as error:
                if self.connections == 0:
                    raise
                failures = 1 if self.connections > connections else failures + 1
                wait = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS)) - 1]
                # Say it once per outage, not every few seconds while the broker is away.
                log = LOGGER.warning if failures == 1 else LOGGER.debug
                log("rules: no broker (%s); reconnecting in %.1f s", error, wait)
                await asyncio.sleep(wait)

    async def _run_connected(self, subscribed: Callable[[], None] | None) -> None:
        client = aiomqtt.Client(
            self._host,
            self._port,
            identifier=self._identifier,
            clean_session=False,
            tls_context=self._tls_context,
            protocol=aiomqtt.ProtocolVersion.V311,
        )
        async with client:
            for rule in RULES:
                await client.subscribe(rule.topic, qos=1)
            self.connections += 1
            if self.connections > 1:
                LOGGER.info("rules: reconnected to the broker")
            if subscribed is not None:
                subscribed()
            messages = client.messages
            async for first in messages:
                group = [_message(first)]
                try:
                    await _fill(group, messages)
                finally:
                    # Even when cancelled or disconnected: paho has acknowledged these.
                    self.dispatch_group(group)


@dataclass(frozen=True)
class _Outcome:
    """What became of one message, reported once its group is committed (or redone)."""

    rule: Rule | None
    topic: str
    result: HandlerResult | None = None
    error: BaseException | None = None
    event: Mapping[str, Any] | None = None
    """The rule event the handler was given (None if there was none)."""


def _rule_of(topic: str) -> Rule | None:
    return next((rule for rule in RULES if rule.matches(topic)), None)


async def _fill(group: list[tuple[str, bytes]], messages: aiomqtt.MessagesIterator) -> None:
    """Add the messages already received, up to GROUP_MESSAGES or GROUP_SECONDS. Under load
    the queue refills while a group is being stored, so groups grow just when one commit per
    message would fall behind; idle, nothing is waited for."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GROUP_SECONDS
    # Each `anext` lets the loop read the socket once more, so the queue keeps filling.
    while len(messages) and len(group) < GROUP_MESSAGES and loop.time() < deadline:
        group.append(_message(await anext(messages)))


def _message(message: aiomqtt.Message) -> tuple[str, bytes]:
    payload = message.payload
    return message.topic.value, bytes(payload) if isinstance(payload, bytes | bytearray) else b""
