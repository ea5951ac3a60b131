"""Contract: the unmodified boto3 ``iot-data`` client against the local iot-data REST subset."""

from __future__ import annotations

import json
from typing import Any

import pytest
from awsiot import iotshadow
from botocore.exceptions import ClientError

from tests.support.local_aggregator import (
    LocalAggregator,
    NodeCredentials,
    iot_data,
    mqtt5_client,
    open_stream,
    shadow_client_v2,
)


@pytest.fixture
def cloud(aggregator: LocalAggregator) -> Any:
    return iot_data(aggregator)


def payload(document: Any) -> str:
    return json.dumps(document)


def read(response: dict[str, Any]) -> Any:
    return json.loads(response["payload"].read())


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as failure:
        call(**kwargs)
    response: dict[str, Any] = failure.value.response
    return {
        "status": response["ResponseMetadata"]["HTTPStatusCode"],
        "code": response["Error"]["Code"],
        "message": response["Error"]["Message"],
    }


def test_get_of_a_missing_shadow_is_resource_not_found(cloud: Any, node: NodeCredentials) -> None:
    assert error_of(cloud.get_thing_shadow, thingName=node.node_id) == {
        "status": 404,
        "code": "ResourceNotFoundException",
        "message": f"No shadow exists with name: '{node.node_id}'",
    }


def test_update_get_delete_round_trip(cloud: Any, node: NodeCredentials) -> None:
    thing = node.node_id
    accepted = read(
        cloud.update_thing_shadow(
            thingName=thing, payload=payload({"state": {"desired": {"mode": "charge"}}})
        )
    )
    assert accepted["state"] == {"desired": {"mode": "charge"}}
    assert accepted["version"] == 1
    current = read(cloud.get_thing_shadow(thingName=thing))
    assert current["state"] == {"desired": {"mode": "charge"}, "delta": {"mode": "charge"}}
    assert set(current["metadata"]["desired"]["mode"]) == {"timestamp"}
    deleted = read(cloud.delete_thing_shadow(thingName=thing))
    assert deleted["version"] == 1
    assert error_of(cloud.get_thing_shadow, thingName=thing)["status"] == 404
    assert error_of(cloud.delete_thing_shadow, thingName=thing)["status"] == 404


def test_named_shadows_are_separate_and_listed_in_pages(cloud: Any, node: NodeCredentials) -> None:
    thing = node.node_id
    for name in ("plan", "alpha", "beta"):
        cloud.update_thing_shadow(
            thingName=thing, shadowName=name, payload=payload({"state": {"reported": {"n": name}}})
        )
    assert error_of(cloud.get_thing_shadow, thingName=thing)["status"] == 404
    plan = read(cloud.get_thing_shadow(thingName=thing, shadowName="plan"))
    assert plan["state"] == {"reported": {"n": "plan"}}
    first = cloud.list_named_shadows_for_thing(thingName=thing, pageSize=2)
    second = cloud.list_named_shadows_for_thing(
        thingName=thing, pageSize=2, nextToken=first["nextToken"]
    )
    assert first["results"] == ["alpha", "beta"]
    assert second["results"] == ["plan"]
    assert "nextToken" not in second


REJECTED_UPDATES = [
    ("{not json", 400, "InvalidRequestException", "Payload contains invalid json"),
    (payload({"desired": {}}), 400, "InvalidRequestException", "Missing required node: state"),
    (
        payload({"state": {"desired": {"a": 1}}, "version": 99}),
        409,
        "ConflictException",
        "Version conflict",
    ),
    (
        payload({"state": {"reported": {"big": "x" * 8200}}}),
        413,
        "RequestEntityTooLargeException",
        "The payload exceeds the maximum size allowed",
    ),
    (
        payload({"state": {"reported": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}}),
        400,
        "InvalidRequestException",
        "JSON contains too many levels of nesting; maximum is 6",
    ),
    (
        payload({"state": {"reported": {}}, "clientToken": "t" * 65}),
        400,
        "InvalidRequestException",
        "Invalid clientToken",
    ),
]


@pytest.mark.parametrize(("body", "status", "code", "message"), REJECTED_UPDATES)
def test_rejected_updates_raise_the_modelled_exception_and_change_nothing(
    cloud: Any, node: NodeCredentials, body: str, *, status: int, code: str, message: str
) -> None:
    thing = node.node_id
    cloud.update_thing_shadow(thingName=thing, payload=payload({"state": {"reported": {"k": 1}}}))
    assert error_of(cloud.update_thing_shadow, thingName=thing, payload=body) == {
        "status": status,
        "code": code,
        "message": message,
    }
    current = read(cloud.get_thing_shadow(thingName=thing))
    assert (current["state"], current["version"]) == ({"reported": {"k": 1}}, 1)


def test_non_utf8_payload_is_unsupported_encoding(cloud: Any, node: NodeCredentials) -> None:
    error = error_of(cloud.update_thing_shadow, thingName=node.node_id, payload=b'{"a":"\xff"}')
    assert (error["status"], error["code"]) == (415, "UnsupportedDocumentEncodingException")


def test_publish_reaches_the_broker(
    aggregator: LocalAggregator, cloud: Any, node: NodeCredentials
) -> None:
    """A shadow request published over REST is served like one from MQTT: the node sees it."""
    thing = node.node_id
    with mqtt5_client(aggregator, node) as (client, _):
        shadow = shadow_client_v2(client)
        deltas = open_stream(
            shadow.create_shadow_delta_updated_stream,
            iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing),
        )
        cloud.publish(
            topic=f"$aws/things/{thing}/shadow/update",
            qos=1,
            payload=payload({"state": {"desired": {"mode": "discharge"}}}),
        )
        delta = deltas.next_event()
    assert delta.state == {"mode": "discharge"}


def test_publish_refuses_wildcards(cloud: Any) -> None:
    error = error_of(cloud.publish, topic="fractal/#", payload=b"x")
    assert (error["status"], error["code"]) == (400, "InvalidRequestException")


def test_an_invalid_thing_name_is_a_bad_request(cloud: Any) -> None:
    assert error_of(cloud.get_thing_shadow, thingName="no spaces")["status"] == 400


def test_a_body_over_128_kb_is_too_large(cloud: Any, node: NodeCredentials) -> None:
    body = payload({"state": {"reported": {"big": "x" * (130 * 1024)}}})
    error = error_of(cloud.update_thing_shadow, thingName=node.node_id, payload=body)
    assert (error["status"], error["code"]) == (413, "RequestEntityTooLargeException")
