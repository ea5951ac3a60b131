"""Contract: the unmodified awsiotsdk V1 ``IotShadowClient`` (MQTT 3.1.1, mutual TLS)."""

from __future__ import annotations

import json
import queue
from typing import Any

import pytest
from awscrt import mqtt
from awsiot import iotshadow

from tests.support.local_aggregator import (
    TIMEOUT,
    LocalAggregator,
    NodeCredentials,
    iot_data,
    mqtt3_connection,
)

QOS = mqtt.QoS.AT_LEAST_ONCE


class Answers:
    """Responses the V1 client's callbacks delivered (on CRT threads), per topic kind."""

    def __init__(self) -> None:
        self.queues: dict[str, queue.Queue[Any]] = {}

    def callback(self, kind: str) -> Any:
        self.queues[kind] = queue.Queue()
        return self.queues[kind].put

    def next(self, kind: str) -> Any:
        return self.queues[kind].get(timeout=TIMEOUT)


def subscribed(shadow: iotshadow.IotShadowClient, thing: str) -> Answers:
    """Subscribe to every classic-shadow response topic of ``thing``."""
    answers = Answers()
    subscriptions = [
        (shadow.subscribe_to_get_shadow_accepted, iotshadow.GetShadowSubscriptionRequest, "get"),
        (shadow.subscribe_to_get_shadow_rejected, iotshadow.GetShadowSubscriptionRequest, "get!"),
        (
            shadow.subscribe_to_update_shadow_accepted,
            iotshadow.UpdateShadowSubscriptionRequest,
            "update",
        ),
        (
            shadow.subscribe_to_update_shadow_rejected,
            iotshadow.UpdateShadowSubscriptionRequest,
            "update!",
        ),
        (
            shadow.subscribe_to_delete_shadow_accepted,
            iotshadow.DeleteShadowSubscriptionRequest,
            "delete",
        ),
        (
            shadow.subscribe_to_shadow_delta_updated_events,
            iotshadow.ShadowDeltaUpdatedSubscriptionRequest,
            "delta",
        ),
    ]
    for subscribe, request, kind in subscriptions:
        future, _ = subscribe(request(thing_name=thing), QOS, answers.callback(kind))
        future.result(TIMEOUT)
    return answers


def test_get_update_delta_and_delete_with_the_v1_client(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    thing = node.node_id
    with mqtt3_connection(aggregator, node) as connection:
        shadow = iotshadow.IotShadowClient(connection)
        answers = subscribed(shadow, thing)

        shadow.publish_get_shadow(
            iotshadow.GetShadowRequest(thing_name=thing, client_token="g1"), QOS
        ).result(TIMEOUT)
        missing = answers.next("get!")

        report = iotshadow.ShadowState(reported={"mode": "hold"})
        shadow.publish_update_shadow(
            iotshadow.UpdateShadowRequest(thing_name=thing, state=report, client_token="u1"), QOS
        ).result(TIMEOUT)
        created = answers.next("update")

        iot_data(aggregator).update_thing_shadow(
            thingName=thing, payload=json.dumps({"state": {"desired": {"mode": "charge"}}})
        )
        delta = answers.next("delta")
        answers.next("update")  # the aggregator's update is announced on update/accepted too

        stale = iotshadow.UpdateShadowRequest(
            thing_name=thing, state=report, version=1, client_token="u2"
        )
        shadow.publish_update_shadow(stale, QOS).result(TIMEOUT)
        conflict = answers.next("update!")

        shadow.publish_get_shadow(iotshadow.GetShadowRequest(thing_name=thing), QOS).result(TIMEOUT)
        current = answers.next("get")

        shadow.publish_delete_shadow(
            iotshadow.DeleteShadowRequest(thing_name=thing, client_token="d1"), QOS
        ).result(TIMEOUT)
        deleted = answers.next("delete")

    assert (missing.code, missing.client_token) == (404, "g1")
    assert missing.message == f"No shadow exists with name: '{thing}'"
    assert (created.version, created.client_token) == (1, "u1")
    assert created.state.reported == {"mode": "hold"}
    assert (delta.state, delta.version) == ({"mode": "charge"}, 2)
    assert (conflict.code, conflict.message, conflict.client_token) == (
        409,
        "Version conflict",
        "u2",
    )
    assert current.state.delta == {"mode": "charge"}
    assert current.version == 2
    assert (deleted.version, deleted.client_token) == (2, "d1")


def test_v1_named_shadow_update_is_isolated(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    thing = node.node_id
    with mqtt3_connection(aggregator, node) as connection:
        shadow = iotshadow.IotShadowClient(connection)
        accepted: queue.Queue[Any] = queue.Queue()
        future, _ = shadow.subscribe_to_update_named_shadow_accepted(
            iotshadow.UpdateNamedShadowSubscriptionRequest(thing_name=thing, shadow_name="plan"),
            QOS,
            accepted.put,
        )
        future.result(TIMEOUT)
        request = iotshadow.UpdateNamedShadowRequest(
            thing_name=thing, shadow_name="plan", state=iotshadow.ShadowState(desired={"id": "p1"})
        )
        shadow.publish_update_named_shadow(request, QOS).result(TIMEOUT)
        answer = accepted.get(timeout=TIMEOUT)
    assert answer.version == 1
    cloud = iot_data(aggregator)
    with pytest.raises(cloud.exceptions.ResourceNotFoundException):
        cloud.get_thing_shadow(thingName=thing)
    plan = json.loads(cloud.get_thing_shadow(thingName=thing, shadowName="plan")["payload"].read())
    assert plan["state"]["desired"] == {"id": "p1"}
