"""Contract: the unmodified awsiotsdk V2 shadow client (MQTT5, mutual TLS) against our shadow
service behind real mosquitto, with the aggregator side driven through boto3 iot-data."""

from __future__ import annotations

import json
from typing import Any

import pytest
from awsiot import V2ServiceException, iotshadow

from tests.support.local_aggregator import (
    TIMEOUT,
    LocalAggregator,
    NodeCredentials,
    iot_data,
    mqtt5_client,
    next_message,
    open_stream,
    publish,
    shadow_client_v2,
    subscribe,
)

pytestmark = pytest.mark.enable_socket


def update(shadow: iotshadow.IotShadowClientV2, thing: str, **state: Any) -> Any:
    request = iotshadow.UpdateShadowRequest(thing_name=thing, state=iotshadow.ShadowState(**state))
    return shadow.update_shadow(request).result(TIMEOUT)


def get(shadow: iotshadow.IotShadowClientV2, thing: str) -> Any:
    return shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=thing)).result(TIMEOUT)


def service_error(future: Any) -> iotshadow.V2ErrorResponse:
    with pytest.raises(V2ServiceException) as failure:
        future.result(TIMEOUT)
    error = failure.value.modeled_error
    assert isinstance(error, iotshadow.V2ErrorResponse)
    return error


def test_get_of_a_missing_shadow_is_rejected_with_404(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    with mqtt5_client(aggregator, node) as (client, _):
        shadow = shadow_client_v2(client)
        error = service_error(
            shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=node.node_id))
        )
    assert error.code == 404
    assert error.message == f"No shadow exists with name: '{node.node_id}'"


def test_update_creates_then_versions_increment_and_get_shows_the_delta(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    thing = node.node_id
    with mqtt5_client(aggregator, node) as (client, _):
        shadow = shadow_client_v2(client)
        created = update(shadow, thing, reported={"soc": 40, "mode": "hold"})
        changed = update(shadow, thing, desired={"mode": "charge"})
        current = get(shadow, thing)
    assert (created.version, changed.version, current.version) == (1, 2, 2)
    assert created.state.reported == {"soc": 40, "mode": "hold"}
    assert current.state.desired == {"mode": "charge"}
    assert current.state.reported == {"soc": 40, "mode": "hold"}
    assert current.state.delta == {"mode": "charge"}
    assert set(current.metadata.reported) == {"soc", "mode"}


def test_desired_written_by_the_aggregator_reaches_the_node_as_a_delta(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    thing = node.node_id
    cloud = iot_data(aggregator)
    with mqtt5_client(aggregator, node) as (client, _):
        shadow = shadow_client_v2(client)
        update(shadow, thing, reported={"mode": "hold", "w": 0})
        deltas = open_stream(
            shadow.create_shadow_delta_updated_stream,
            iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing),
        )
        cloud.update_thing_shadow(
            thingName=thing, payload=json.dumps({"state": {"desired": {"mode": "charge", "w": 0}}})
        )
        first = deltas.next_event()
        update(shadow, thing, reported={"soc": 41})  # reported only: no delta
        cloud.update_thing_shadow(
            thingName=thing, payload=json.dumps({"state": {"desired": {"w": 2500}}})
        )
        second = deltas.next_event()
    assert first.state == {"mode": "charge"}
    assert first.version == 2
    assert second.state == {"w": 2500}
    assert second.version == 4


def test_update_documents_carry_previous_and_current(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    thing = node.node_id
    with mqtt5_client(aggregator, node) as (client, _):
        shadow = shadow_client_v2(client)
        updates = open_stream(
            shadow.create_shadow_updated_stream,
            iotshadow.ShadowUpdatedSubscriptionRequest(thing_name=thing),
        )
        update(shadow, thing, reported={"soc": 40})
        created = updates.next_event()
        update(shadow, thing, reported={"soc": 41})
        changed = updates.next_event()
    assert created.previous is None
    assert created.current.state.reported == {"soc": 40}
    assert created.current.version == 1
    assert changed.previous.state.reported == {"soc": 40}
    assert changed.previous.version == 1
    assert changed.current.state.reported == {"soc": 41}
    assert changed.current.version == 2


def test_null_deletes_keys_and_arrays_are_replaced_whole(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    thing = node.node_id
    with mqtt5_client(aggregator, node) as (client, _):
        shadow = shadow_client_v2(client)
        update(shadow, thing, reported={"slots": [1, 2, 3], "battery": {"w": 10, "soc": 5}})
        update(shadow, thing, reported={"slots": [9], "battery": {"w": None}})
        current = get(shadow, thing)
    assert current.state.reported == {"slots": [9], "battery": {"soc": 5}}


def test_a_stale_version_is_rejected_with_409(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    thing = node.node_id
    with mqtt5_client(aggregator, node) as (client, _):
        shadow = shadow_client_v2(client)
        update(shadow, thing, reported={"a": 1})
        update(shadow, thing, reported={"a": 2})
        stale = iotshadow.UpdateShadowRequest(
            thing_name=thing, state=iotshadow.ShadowState(reported={"a": 3}), version=1
        )
        error = service_error(shadow.update_shadow(stale))
        current = get(shadow, thing)
    assert (error.code, error.message) == (409, "Version conflict")
    assert current.state.reported == {"a": 2}


def test_a_state_over_8_kb_is_rejected_with_413(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    with mqtt5_client(aggregator, node) as (client, _):
        shadow = shadow_client_v2(client)
        request = iotshadow.UpdateShadowRequest(
            thing_name=node.node_id, state=iotshadow.ShadowState(reported={"big": "x" * 8200})
        )
        error = service_error(shadow.update_shadow(request))
    assert (error.code, error.message) == (413, "The payload exceeds the maximum size allowed")


def test_a_state_nested_deeper_than_6_is_rejected_with_400(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    deep: Any = 1
    for level in range(7):
        deep = {f"l{level}": deep}
    with mqtt5_client(aggregator, node) as (client, _):
        shadow = shadow_client_v2(client)
        request = iotshadow.UpdateShadowRequest(
            thing_name=node.node_id, state=iotshadow.ShadowState(reported=deep)
        )
        error = service_error(shadow.update_shadow(request))
    assert error.code == 400
    assert error.message == "JSON contains too many levels of nesting; maximum is 6"


def test_delete_is_accepted_then_get_is_404(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    thing = node.node_id
    with mqtt5_client(aggregator, node) as (client, _):
        shadow = shadow_client_v2(client)
        update(shadow, thing, reported={"a": 1})
        deleted = shadow.delete_shadow(iotshadow.DeleteShadowRequest(thing_name=thing)).result(
            TIMEOUT
        )
        error = service_error(shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=thing)))
    assert deleted.version == 1
    assert error.code == 404


def test_named_shadows_are_separate_and_listed(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    thing = node.node_id
    with mqtt5_client(aggregator, node) as (client, _):
        shadow = shadow_client_v2(client)
        plan = iotshadow.UpdateNamedShadowRequest(
            thing_name=thing, shadow_name="plan", state=iotshadow.ShadowState(reported={"id": "p1"})
        )
        shadow.update_named_shadow(plan).result(TIMEOUT)
        classic_error = service_error(
            shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=thing))
        )
        named = shadow.get_named_shadow(
            iotshadow.GetNamedShadowRequest(thing_name=thing, shadow_name="plan")
        ).result(TIMEOUT)
    assert classic_error.code == 404
    assert named.state.reported == {"id": "p1"}
    listed = iot_data(aggregator).list_named_shadows_for_thing(thingName=thing)
    assert listed["results"] == ["plan"]


# -- raw requests the SDK would never send ----------------------------------------------------


def raw_update(aggregator: LocalAggregator, node: NodeCredentials, payload: bytes) -> Any:
    """Publish ``payload`` on the update topic; return the answer (topic, document)."""
    prefix = f"$aws/things/{node.node_id}/shadow/update"
    with mqtt5_client(aggregator, node) as (client, events):
        subscribe(client, f"{prefix}/accepted")
        subscribe(client, f"{prefix}/rejected")
        publish(client, prefix, payload)
        return next_message(events)


def test_invalid_json_is_rejected_with_400(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    topic, answer = raw_update(aggregator, node, b'{"state": {"reported": ')
    assert topic.endswith("/update/rejected")
    assert (answer["code"], answer["message"]) == (400, "Payload contains invalid json")


def test_client_token_is_echoed(aggregator: LocalAggregator, node: NodeCredentials) -> None:
    token = "t" * 64
    payload = json.dumps({"state": {"reported": {"a": 1}}, "clientToken": token}).encode()
    topic, answer = raw_update(aggregator, node, payload)
    assert topic.endswith("/update/accepted")
    assert answer["clientToken"] == token


def test_a_client_token_over_64_bytes_is_rejected_with_400(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    payload = json.dumps({"state": {"reported": {"a": 1}}, "clientToken": "t" * 65}).encode()
    topic, answer = raw_update(aggregator, node, payload)
    assert topic.endswith("/update/rejected")
    assert (answer["code"], answer["message"]) == (400, "Invalid clientToken")


def test_a_plan_written_by_the_aggregator_reaches_the_node_as_named_shadow_documents(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    """The production path: desired.plan on the named shadow "plan", read from update/documents."""
    thing = node.node_id
    plan = {"id": "p-1", "slots": [{"mode": "charge", "w": 2000}, {"mode": "hold"}]}
    with mqtt5_client(aggregator, node) as (client, _):
        shadow = shadow_client_v2(client)
        documents = open_stream(
            shadow.create_named_shadow_updated_stream,
            iotshadow.NamedShadowUpdatedSubscriptionRequest(thing_name=thing, shadow_name="plan"),
        )
        iot_data(aggregator).update_thing_shadow(
            thingName=thing,
            shadowName="plan",
            payload=json.dumps({"state": {"desired": {"plan": plan}}}),
        )
        received = documents.next_event()
        ack = iotshadow.UpdateNamedShadowRequest(
            thing_name=thing,
            shadow_name="plan",
            state=iotshadow.ShadowState(reported={"plan": {"id": "p-1", "status": "accepted"}}),
        )
        acknowledged = shadow.update_named_shadow(ack).result(TIMEOUT)
    assert received.current.state.desired == {"plan": plan}
    assert received.current.version == 1
    assert acknowledged.version == 2
    stored = json.loads(
        iot_data(aggregator).get_thing_shadow(thingName=thing, shadowName="plan")["payload"].read()
    )
    assert stored["state"]["reported"] == {"plan": {"id": "p-1", "status": "accepted"}}
