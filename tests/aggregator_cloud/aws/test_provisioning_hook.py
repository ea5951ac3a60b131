"""The fleet-provisioning pre-hook against an IoT registry (moto): a node id is enrolled once.

The event is the one AWS IoT sends the hook (payload version 2020-04-01).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from aggregator_cloud.provisioning_hook import handler, refusal


@pytest.fixture
def iot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL_IOT", raising=False)
    with mock_aws():
        yield boto3.client("iot")


def request(**parameters: object) -> dict[str, Any]:
    return {
        "claimCertificateId": "c" * 64,
        "certificateId": "d" * 64,
        "certificatePem": "-----BEGIN CERTIFICATE-----...",
        "templateArn": "arn:aws:iot:eu-west-2:123456789012:provisioningtemplate/fractal-nodes",
        "clientId": "claim-installer-1",
        "parameters": parameters,
    }


def test_a_new_node_id_is_allowed(iot: Any) -> None:
    assert handler(request(NodeId="home-42"), None) == {"allowProvisioning": True}


def test_an_enrolled_node_cannot_be_taken_over_with_the_claim_certificate(iot: Any) -> None:
    iot.create_thing(thingName="home-42")
    assert handler(request(NodeId="home-42"), None) == {"allowProvisioning": False}
    assert "already enrolled" in str(refusal(request(NodeId="home-42")))
    # ... while another, new node still enrols
    assert handler(request(NodeId="home-43"), None) == {"allowProvisioning": True}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (request(NodeId="home/42"), "not a node id"),
        (request(NodeId="+"), "not a node id"),
        (request(NodeId=""), "not a node id"),
        (request(NodeId="x" * 129), "not a node id"),
        (request(NodeId=42), "not a node id"),
        (request(), "not a node id"),
        ({"parameters": None}, "no parameters"),
        ("not an event", "no parameters"),
    ],
)
def test_malformed_requests_are_refused_with_the_reason(
    iot: Any, event: object, reason: str
) -> None:
    assert handler(event, None) == {"allowProvisioning": False}  # type: ignore[arg-type]
    assert reason in str(refusal(event))
