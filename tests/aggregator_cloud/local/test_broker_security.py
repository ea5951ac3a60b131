"""The broker's identity and ACL: a node is its certificate's CN and touches only its own topics.

mosquitto 2.0's ACL file cannot refuse a SUBSCRIBE (it grants it), but it checks the read ACL
on every message it delivers, so a subscription to another node's topics stays silent; AWS IoT
would refuse the SUBSCRIBE itself. Publishing elsewhere is refused with PUBACK 135
(NOT_AUTHORIZED), which is also how the V2 shadow client's request to another thing fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from awscrt import mqtt5
from awsiot import V2ServiceException, iotshadow

from tests.support.certificates import foreign_ca
from tests.support.local_aggregator import (
    TIMEOUT,
    LocalAggregator,
    NodeCredentials,
    iot_data,
    mqtt5_client,
    mqtt5_session,
    next_message,
    publish,
    shadow_client_v2,
    subscribe,
)

REPORT = json.dumps({"state": {"reported": {"soc": 50}}}).encode()


@pytest.fixture
def other_node(aggregator: LocalAggregator, node: NodeCredentials) -> NodeCredentials:
    return aggregator.enroll(f"{node.node_id}-neighbour")


def test_a_node_cannot_publish_to_another_nodes_shadow(
    aggregator: LocalAggregator, node: NodeCredentials, other_node: NodeCredentials
) -> None:
    with mqtt5_client(aggregator, node) as (client, _):
        refused = publish(client, f"$aws/things/{other_node.node_id}/shadow/update", REPORT)
        refused_named = publish(
            client, f"$aws/things/{other_node.node_id}/shadow/name/plan/update", REPORT
        )
    assert refused.puback.reason_code == mqtt5.PubackReasonCode.NOT_AUTHORIZED
    assert refused_named.puback.reason_code == mqtt5.PubackReasonCode.NOT_AUTHORIZED
    cloud = iot_data(aggregator)
    with pytest.raises(cloud.exceptions.ResourceNotFoundException):
        cloud.get_thing_shadow(thingName=other_node.node_id)


def test_a_node_cannot_forge_the_services_answers(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    with mqtt5_client(aggregator, node) as (client, _):
        forged = publish(client, f"$aws/things/{node.node_id}/shadow/update/delta", REPORT)
    assert forged.puback.reason_code == mqtt5.PubackReasonCode.NOT_AUTHORIZED


def test_the_v2_client_cannot_read_another_things_shadow(
    aggregator: LocalAggregator, node: NodeCredentials, other_node: NodeCredentials
) -> None:
    iot_data(aggregator).update_thing_shadow(thingName=other_node.node_id, payload=REPORT)
    with mqtt5_client(aggregator, node) as (client, _):
        shadow = shadow_client_v2(client)
        request = iotshadow.GetShadowRequest(thing_name=other_node.node_id)
        with pytest.raises(V2ServiceException) as failure:
            shadow.get_shadow(request).result(TIMEOUT)
    assert failure.value.modeled_error is None  # the broker refused; the service never answered
    assert "PUBLISH_FAILURE" in str(failure.value)


def test_subscriptions_to_other_nodes_topics_deliver_nothing(
    aggregator: LocalAggregator, node: NodeCredentials, other_node: NodeCredentials
) -> None:
    """Everything published for the other node before our own marker is never delivered to us."""
    own = f"$aws/things/{node.node_id}/shadow/update"
    with mqtt5_client(aggregator, node) as (spy, spied):
        for topic_filter in (f"$aws/things/{other_node.node_id}/shadow/#", "$aws/#", "#"):
            subscribe(spy, topic_filter)
        with mqtt5_client(aggregator, other_node) as (victim, _):
            shadow = shadow_client_v2(victim)
            state = iotshadow.ShadowState(reported={"soc": 1})
            shadow.update_shadow(
                iotshadow.UpdateShadowRequest(thing_name=other_node.node_id, state=state)
            ).result(TIMEOUT)
        iot_data(aggregator).update_thing_shadow(
            thingName=other_node.node_id,
            payload=json.dumps({"state": {"desired": {"soc": 90}}}),
        )
        publish(spy, own, REPORT)  # the marker: answered after everything above
        seen = [next_message(spied)[0] for _ in range(3)]
    assert seen == [own, f"{own}/accepted", f"{own}/documents"]


def test_a_node_publishes_telemetry_only_on_its_own_topic(
    aggregator: LocalAggregator, node: NodeCredentials, other_node: NodeCredentials
) -> None:
    with mqtt5_client(aggregator, node) as (client, _):
        own = publish(client, f"$aws/rules/fractal_telemetry/{node.node_id}", b"[]")
        other = publish(client, f"$aws/rules/fractal_telemetry/{other_node.node_id}", b"[]")
    accepted = {mqtt5.PubackReasonCode.SUCCESS, mqtt5.PubackReasonCode.NO_MATCHING_SUBSCRIBERS}
    assert own.puback.reason_code in accepted
    assert other.puback.reason_code == mqtt5.PubackReasonCode.NOT_AUTHORIZED


def test_a_certificate_from_another_ca_cannot_connect(
    aggregator: LocalAggregator, node: NodeCredentials, tmp_path: Path
) -> None:
    impostor = foreign_ca().issue(node.node_id)
    certificate, key = impostor.write(tmp_path, "impostor")
    credentials = NodeCredentials(node.node_id, certificate, key, node.ca)
    with mqtt5_session(aggregator, credentials) as (_, events):
        failure = events.connection_failure.result(TIMEOUT)
    assert failure.exception is not None
    assert not events.connected.done()
