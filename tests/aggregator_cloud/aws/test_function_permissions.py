"""Least privilege that is enough: each Lambda, run with only the IAM permissions and settings
the template gives its function (moto enforcing IAM), does its whole job — and one function's
permissions do not stretch to another's job.

The worker's `iot-data` calls (the nodes' plan shadows) go to the embedded aggregator's shadow
service, which does not check IAM, and the API's plan route is not run. What moto does not
authorise (DynamoDB tables, HEAD requests, condition keys) is said in `moto_stack`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from aggregator_cloud.lambdas.api import handler as api_handler
from aggregator_cloud.lambdas.ingest import shadow_handler, telemetry_handler
from aggregator_cloud.lambdas.plans import schedule_handler, status_handler, worker_handler
from tests.aggregator_cloud.aws.moto_stack import Stack, create_storage, run_as
from tests.aggregator_cloud.aws.template_model import REGION
from tests.support.fleet_documents import (
    ack,
    batch,
    descriptor,
    documents_message,
    plan,
    reading,
    snapshot,
)
from tests.support.local_aggregator import LocalAggregator

NODE = "home-7"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield create_storage([NODE, "home-8", "home-9"])


def queued(stack: Stack) -> list[str]:
    sqs = boto3.client("sqs")
    nodes: list[str] = []
    while messages := sqs.receive_message(
        QueueUrl=stack.names["PlanQueue"], MaxNumberOfMessages=10
    ).get("Messages", []):
        for message in messages:
            nodes.extend(json.loads(message["Body"])["nodes"])
            sqs.delete_message(
                QueueUrl=stack.names["PlanQueue"], ReceiptHandle=message["ReceiptHandle"]
            )
    return nodes


def keys(stack: Stack, bucket: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=stack.names[bucket])
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_the_telemetry_function_stores_history_and_keeps_refused_batches(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = {**batch(NODE, 1, [reading(1), reading(2)]), "thing_name": NODE}
    other_nodes = {**batch("home-8", 1, [reading(1)]), "thing_name": NODE}
    with run_as(stack, "TelemetryFunction", monkeypatch):
        stored = telemetry_handler(good, None)
        replayed = telemetry_handler(good, None)  # HEAD finds it: needs GetObject
        refused = telemetry_handler(other_nodes, None)
    assert stored["ok"]
    assert stored["stored"] == 2
    assert replayed["duplicates"] == 2
    assert "kept" in refused
    history = keys(stack, "HistoryBucket")
    assert [key for key in history if key.startswith("history/")] != []
    assert [key for key in history if key.startswith("refused/")] != []


def test_the_shadow_function_registers_nodes_and_queues_replans(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported = {
        "node": descriptor(NODE, capacity_wh=5000),
        "telemetry": snapshot(NODE, 3, soc_pct=40),
        "replan_requested": "2026-03-01T12:05:00Z",
    }
    with run_as(stack, "ShadowFunction", monkeypatch):
        answer = shadow_handler({**documents_message(reported=reported), "thing_name": NODE}, None)
        bad = shadow_handler({**documents_message(reported={"node": 3}), "thing_name": NODE}, None)
    assert answer["ok"]
    assert answer["replan"] == [NODE]
    assert "kept" in bad
    assert set(queued(stack)) == {NODE}
    item = boto3.client("dynamodb").get_item(TableName="FleetTable", Key={"node": {"S": NODE}})
    assert item["Item"]["name"]["S"] == "Home"


def test_the_plan_status_function_records_acks_and_replans_expired_plans(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def event(**state: Any) -> dict[str, Any]:
        return {**documents_message(**state), "thing_name": NODE}

    with run_as(stack, "PlanStatusFunction", monkeypatch):
        written = status_handler(event(desired={"plan": plan(NODE, "p-1")}), None)
        accepted = status_handler(event(reported={"plan": ack("p-1", "accepted", 5)}), None)
        expired = status_handler(event(reported={"plan": ack("p-1", "expired", 9)}), None)
    assert written["ok"]
    assert accepted["ok"]
    assert expired["replan"] == [NODE]
    assert queued(stack) == [NODE]


def test_the_schedule_function_fans_the_fleet_out(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_as(stack, "PlanScheduleFunction", monkeypatch):
        answer = schedule_handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)
    assert answer["queued_nodes"] == 3
    assert sorted(queued(stack)) == [NODE, "home-8", "home-9"]


def api(method: str, path: str, body: object = None) -> tuple[int, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "rawPath": path,
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = json.dumps(body)
    response = api_handler(event, None)
    return response["statusCode"], json.loads(response["body"])


def test_the_api_function_reads_the_fleet_and_stores_flexibility_events(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported = {"node": descriptor(NODE, tags={"street": "mill-lane"})}
    with run_as(stack, "ShadowFunction", monkeypatch):
        shadow_handler({**documents_message(reported=reported), "thing_name": NODE}, None)
    flex = {
        "schema": "fractal.flex_event.v1",
        "id": "ssen-1",
        "issued": "2026-03-01T09:00:00Z",
        "source": "SSEN",
        "group": {"street": "mill-lane"},
        "direction": "down",
        "power_w": 20000,
        "start": "2026-03-01T17:00:00Z",
        "end": "2026-03-01T19:00:00Z",
    }
    with run_as(stack, "ApiFunction", monkeypatch):
        fleet_status, fleet = api("GET", "/fleet")
        node_status, _ = api("GET", f"/nodes/{NODE}")
        created, _ = api("POST", "/flex-events", flex)
        again, _ = api("POST", "/flex-events", flex)
    assert fleet_status == 200
    assert NODE in json.dumps(fleet)
    assert node_status == 200
    assert (created, again) == (201, 200)
    assert keys(stack, "InputsBucket") == ["flex-events/ssen-1.json"]


def test_a_function_cannot_do_another_ones_job(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check has teeth: the API's read-only role cannot write telemetry history."""
    good = {**batch(NODE, 1, [reading(1)]), "thing_name": NODE}
    with run_as(stack, "ApiFunction", monkeypatch):
        # the API has no HISTORY_BUCKET setting: give it one, so only IAM can stop it
        monkeypatch.setenv("HISTORY_BUCKET", stack.names["HistoryBucket"])
        with pytest.raises(ClientError) as error:
            telemetry_handler(good, None)
    assert error.value.response["Error"]["Code"] in {"AccessDenied", "AccessDeniedException"}


@pytest.fixture(scope="module")
def shadow_service() -> Iterator[LocalAggregator]:
    """The embedded aggregator's shadow service stands in for `iot-data` (not moto)."""
    with LocalAggregator.started() as running:
        yield running


def planning_inputs() -> dict[str, Any]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)

    def series(value: float) -> dict[str, Any]:
        return {"start": start.isoformat(), "step_seconds": 1800, "values": [value] * 98}

    return {
        "schema": "fractal.planning_inputs.v1",
        "import_p_per_kwh": series(25.0),
        "export_p_per_kwh": series(4.0),
        "load_kw": series(0.4),
    }


def flex_event() -> dict[str, Any]:
    """A turn-down for a feeder no home of this module is on, starting in an hour."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return {
        "schema": "fractal.flex_event.v1",
        "id": "permissions-event",
        "issued": datetime.now(UTC).isoformat(),
        "source": "SSEN",
        "group": {"feeder": "nowhere"},
        "direction": "down",
        "power_w": 1000,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
    }


def test_a_planning_round_runs_on_the_schedule_and_worker_permissions(
    stack: Stack,
    shadow_service: LocalAggregator,
    socket_enabled: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    homes = [f"home-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    boto3.client("dynamodb").delete_item(TableName="FleetTable", Key={"node": {"S": NODE}})
    for node in ("home-8", "home-9"):
        boto3.client("dynamodb").delete_item(TableName="FleetTable", Key={"node": {"S": node}})
    with run_as(stack, "ShadowFunction", monkeypatch):
        for home in homes:
            reported = {"node": descriptor(home, capacity_wh=5000)}
            shadow_handler({**documents_message(reported=reported), "thing_name": home}, None)
    queued(stack)  # a first descriptor asks for a plan: planned with the round below
    boto3.client("s3").put_object(
        Bucket=stack.names["InputsBucket"],
        Key="inputs/tariff.json",
        Body=json.dumps(planning_inputs()).encode(),
    )
    # A live flexibility event: the worker reads flex-events/ and scans the fleet for its group.
    boto3.client("s3").put_object(
        Bucket=stack.names["InputsBucket"],
        Key="flex-events/permissions.json",
        Body=json.dumps(flex_event()).encode(),
    )
    with run_as(stack, "PlanScheduleFunction", monkeypatch):
        schedule_handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)
    sqs = boto3.client("sqs")
    received = sqs.receive_message(QueueUrl=stack.names["PlanQueue"], MaxNumberOfMessages=10)
    records = [
        {"messageId": message["MessageId"], "body": message["Body"], "eventSource": "aws:sqs"}
        for message in received["Messages"]
    ]
    with run_as(stack, "PlanWorkerFunction", monkeypatch):
        monkeypatch.setenv("IOT_DATA_ENDPOINT", shadow_service.http_endpoint)
        answer = worker_handler({"Records": records}, None)
    assert answer == {"batchItemFailures": []}
    iot_data = boto3.client("iot-data", endpoint_url=shadow_service.http_endpoint)
    for home in homes:
        shadow = iot_data.get_thing_shadow(thingName=home, shadowName="plan")
        desired = json.loads(shadow["payload"].read())["state"]["desired"]
        assert desired["plan"]["node"] == home
