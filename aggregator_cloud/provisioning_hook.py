"""AWS IoT fleet provisioning's pre-provisioning hook: may this node id be enrolled?

Every installer's node carries the same claim certificate, so whoever extracts it can ask the
provisioning template for any thing name. Enrolling an id that already has a thing would attach
a stranger's new certificate to an existing node's thing (and its shadows, its plans), so the
hook allows only ids that are valid thing names (the protocol's `NodeId`) and not enrolled yet.
Re-enrolling a node (a new Home Assistant install) is an operator's decision: delete the old
thing first (docs/aws.md).

IoT calls the hook with `{"claimCertificateId", "certificateId", "certificatePem",
"templateArn", "clientId", "parameters": {...}}` and expects `{"allowProvisioning": bool}`
within five seconds; anything else (or an exception) refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import boto3  # type: ignore[import-untyped]  # no stubs in the environment
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from fractal.protocol.types import NodeId
from pydantic import TypeAdapter, ValidationError

LOGGER = logging.getLogger(__name__)

NODE_ID_PARAMETER: Final = "NodeId"
"""The provisioning template's parameter naming the thing (template.yaml)."""

_NODE_ID: Final = TypeAdapter(NodeId)


def refusal(event: object) -> str | None:
    """Why this provisioning request must be refused, or None to allow it."""
    parameters = event.get("parameters") if isinstance(event, Mapping) else None
    if not isinstance(parameters, Mapping):
        return "the request has no parameters"
    node_id = parameters.get(NODE_ID_PARAMETER)
    try:
        _NODE_ID.validate_python(node_id)
    except ValidationError:
        return f"{NODE_ID_PARAMETER} {node_id!r} is not a node id (1-128 of a-z A-Z 0-9 : _ -)"
    if _thing_exists(str(node_id)):
        return f"node {node_id} is already enrolled: delete its thing to enrol it again"
    return None


def handler(event: Mapping[str, Any], context: object) -> dict[str, bool]:
    """The Lambda entry point (template.yaml: ProvisioningHookFunction)."""
    reason = refusal(event)
    if reason is not None:
        LOGGER.warning("provisioning refused: %s", reason)
    return {"allowProvisioning": reason is None}


def _thing_exists(name: str) -> bool:
    try:
        _iot().describe_thing(thingName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False
        raise
    return True


def _iot() -> Any:
    # Made per call: the hook runs once per enrolment. boto3 itself honours
    # AWS_ENDPOINT_URL_IOT (tests point it at moto).
    return boto3.client("iot")
