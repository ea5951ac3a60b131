"""The plan worker Lambda with a DSO flexibility event stored under `flex-events/` (moto S3 and
DynamoDB, the plan shadows on the real shadow service): a message holding one node of the
event's group plans the whole group together, with source dso; other nodes as usual."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from fractal.protocol import Plan, parse

from aggregator_cloud.lambdas.ingest import shadow_handler
from aggregator_cloud.lambdas.plans import worker_handler
from tests.aggregator_cloud.lambdas.conftest import Aws
from tests.aggregator_cloud.lambdas.test_lambda_plans import put_inputs, request, sqs_event
from tests.support.fleet_documents import documents_message

SLOTS = 100


def start() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def inputs() -> dict[str, Any]:
    """20 p, 40 p from 2 to 6 hours after the start; a 2 kW load; nothing paid for export."""

    def series(values: list[float]) -> dict[str, Any]:
        return {"start": start().isoformat(), "step_seconds": 1800, "values": values}

    return {
        "schema": "fractal.planning_inputs.v1",
        "import_p_per_kwh": series([40.0 if 6 <= s < 14 else 20.0 for s in range(SLOTS)]),
        "export_p_per_kwh": series([0.0] * SLOTS),
        "load_kw": series([2.0] * SLOTS),
    }


def describe(node: str, feeder: str) -> None:
    """The node's descriptor (a 10 kWh battery, 1 kW each way) through the shadow Lambda."""
    document = {
        "schema": "fractal.node.v1",
        "node": node,
        "name": node,
        "tags": {"feeder": feeder},
        "software": "0.1.0",
        "link": "local",
        "devices": [
            {
                "id": "battery",
                "kind": "battery",
                "capabilities": ["balance", "charge", "discharge", "hold"],
                "envelope": {
                    "capacity_wh": 10_000,
                    "max_charge_w": 1000,
                    "max_discharge_w": 1000,
                    "soc_min_pct": 10,
                },
            }
        ],
    }
    shadow_handler({**documents_message(reported={"node": document}), "thing_name": node})


def flex_event(feeder: str, power_w: int) -> dict[str, Any]:
    window = start() + timedelta(hours=8)
    return {
        "schema": "fractal.flex_event.v1",
        "id": f"evt-{uuid.uuid4().hex[:8]}",
        "issued": datetime.now(UTC).isoformat(),
        "source": "SSEN",
        "group": {"feeder": feeder},
        "direction": "down",
        "power_w": power_w,
        "start": window.isoformat(),
        "end": (window + timedelta(hours=2)).isoformat(),
    }


def desired_plan(endpoint: str, node: str) -> Plan:
    client = boto3.client("iot-data", endpoint_url=endpoint)
    shadow = json.loads(
        client.get_thing_shadow(thingName=node, shadowName="plan")["payload"].read()
    )
    parsed = parse(Plan, shadow["state"]["desired"]["plan"])
    assert parsed.document is not None, parsed.problems
    return parsed.document


@pytest.mark.usefixtures("iot_data_endpoint")
def test_the_worker_plans_an_event_s_group_together_with_source_dso(
    aws: Aws, shadow_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    run = uuid.uuid4().hex[:6]
    feeder = f"F12-{run}"
    tagged = [f"f12-a-{run}", f"f12-b-{run}"]
    other = f"f13-{run}"
    for node in tagged:
        describe(node, feeder)
    describe(other, "F13")
    aws.messages()  # a first descriptor asks for a plan: not this test's subject
    put_inputs(aws, "inputs/tariff.json", inputs())
    event = flex_event(feeder, power_w=1500)
    put_inputs(aws, f"flex-events/{event['id']}.json", event)
    # A stored event that is not one is left out, the others still planned.
    put_inputs(aws, "flex-events/broken.json", b"{not json")

    with caplog.at_level(logging.INFO, logger="aggregator_cloud.lambdas.plans"):
        # One member in this message, the other in none: the group is planned whole.
        result = worker_handler(sqs_event(request(tagged[0], other)))

    assert result == {"batchItemFailures": []}
    plans = [desired_plan(shadow_service.http_endpoint, node) for node in tagged]
    assert [(plan.source, plan.event) for plan in plans] == [("dso", event["id"])] * 2
    third = desired_plan(shadow_service.http_endpoint, other)
    assert (third.source, third.event) == ("aggregator", None)
    ours = [r.getMessage() for r in caplog.records if r.name == "aggregator_cloud.lambdas.plans"]
    answers = [message for message in ours if event["id"] in message]
    assert len(answers) == 1
    assert f"flexibility event {event['id']}: met" in answers[0]
    assert "deliverable_kw=1.5" in answers[0]
    assert any("flex-events/broken.json left out" in message for message in ours)
